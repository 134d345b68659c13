//! The Slurm executor against a real single-node Slurm cluster (Debian's packages) on
//! loopback, started once for the scenarios in sequence and stopped by PID at the end;
//! plus the checks that need no cluster (resources in the configuration, `report`).
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Project, Run, CONTRACT_HOG};

/// A running single-node cluster; dropping it stops the daemons it started.
struct Cluster {
    dir: tempfile::TempDir,
    /// Pid files of the daemons this cluster started.
    pid_files: Vec<PathBuf>,
}

fn sh(cmd: &str) -> std::process::Output {
    Command::new("sh").args(["-c", cmd]).output().expect("sh")
}

fn is_root() -> bool {
    sh("id -u").stdout.starts_with(b"0\n")
}

fn have(bin: &str) -> bool {
    sh(&format!("command -v {bin}")).status.success()
}

fn pid_alive(pid_file: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Cluster {
    /// Installs the packages where needed and starts munged, slurmctld and slurmd; `Err`
    /// says why the cluster tests are skipped (not root, no apt-get).
    fn start() -> Result<Cluster, String> {
        let needed = ["slurmctld", "slurmd", "sbatch", "munged"];
        if !needed.iter().all(|b| have(b) || Path::new(&format!("/usr/sbin/{b}")).exists()) {
            if !is_root() {
                return Err("Slurm is not installed and installing it needs root".into());
            }
            if !have("apt-get") {
                return Err("Slurm is not installed and apt-get is unavailable".into());
            }
            let install = "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge";
            if !sh(install).status.success() {
                let o = sh(&format!("apt-get update -q && {install}"));
                assert!(
                    o.status.success(),
                    "apt-get install failed:\n{}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
        if !is_root() {
            return Err("starting slurmd needs root".into());
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let mut cluster = Cluster {
            dir,
            pid_files: Vec::new(),
        };
        // munge: reuse a running munged, else start one (and stop it at the end).
        let munge_pid = Path::new("/run/munge/munged.pid");
        if pid_alive(munge_pid).is_none() {
            let o = sh("install -d -o munge -g munge -m 755 /run/munge && \
                        install -d -o munge -g munge -m 700 /var/log/munge /var/lib/munge && \
                        runuser -u munge -- /usr/sbin/munged");
            assert!(o.status.success(), "munged: {}", String::from_utf8_lossy(&o.stderr));
            cluster.pid_files.push(munge_pid.to_path_buf());
        }
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let mem_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m.lines().find(|l| l.starts_with("MemTotal:")).map(str::to_string))
            .and_then(|l| l.split_whitespace().nth(1).and_then(|k| k.parse::<u64>().ok()))
            .map(|kib| kib / 1024 * 9 / 10)
            .unwrap_or(1024);
        let p = |name: &str| d.join(name).display().to_string();
        std::fs::create_dir_all(d.join("state")).unwrap();
        std::fs::create_dir_all(d.join("spool")).unwrap();
        let conf = format!(
            "ClusterName=ktlabtest\nSlurmctldHost=localhost\nSlurmUser=root\nSlurmdUser=root\n\
             SlurmctldPort={}\nSlurmdPort={}\n\
             StateSaveLocation={}\nSlurmdSpoolDir={}\nSlurmctldPidFile={}\nSlurmdPidFile={}\n\
             SlurmctldLogFile={}\nSlurmdLogFile={}\nJobCompType=jobcomp/filetxt\nJobCompLoc={}\n\
             AuthType=auth/munge\nCredType=cred/munge\nProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
             JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n\
             SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\nSchedulerType=sched/backfill\n\
             ReturnToService=2\nMpiDefault=none\nMailProg=/bin/true\nMinJobAge=3600\n\
             DependencyParameters=kill_invalid_depend\nSchedulerParameters=batch_sched_delay=0,sched_interval=1\n\
             NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mib} State=UNKNOWN\n\
             PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
            free_port(),
            free_port(),
            p("state"),
            p("spool"),
            p("slurmctld.pid"),
            p("slurmd.pid"),
            p("slurmctld.log"),
            p("slurmd.log"),
            p("jobcomp.txt"),
        );
        std::fs::write(d.join("slurm.conf"), conf).unwrap();
        for (daemon, args, pid) in [
            ("slurmctld", vec!["-i"], "slurmctld.pid"),
            ("slurmd", vec!["-N", "localhost"], "slurmd.pid"),
        ] {
            let o = cluster.command(&format!("/usr/sbin/{daemon}")).args(&args).output().unwrap();
            assert!(o.status.success(), "{daemon}: {}", String::from_utf8_lossy(&o.stderr));
            cluster.pid_files.push(d.join(pid));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let o = cluster.command("sinfo").args(["-h", "-o", "%t"]).output().unwrap();
            if String::from_utf8_lossy(&o.stdout).trim() == "idle" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the test cluster did not come up:\n{}",
                std::fs::read_to_string(d.join("slurmctld.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(cluster)
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.conf());
        c
    }

    /// Ids of the jobs in `state` (e.g. PD), comma-separated.
    fn jobs_in(&self, state: &str) -> Vec<String> {
        let o = self.command("squeue").args(["-h", "-t", state, "-o", "%i"]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect()
    }

    /// `ktlab` in the project, talking to this cluster; killed (and the test failed)
    /// after two minutes, so that a stuck queue cannot hang CI.
    fn ktlab(&self, p: &Project, args: &[&str]) -> Run {
        let mut child = self
            .ktlab_cmd(p)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            std::io::Read::read_to_end(&mut out, &mut s).unwrap();
            s
        });
        let mut stderr = Vec::new();
        let err_reader = std::thread::spawn(move || {
            std::io::Read::read_to_end(&mut err, &mut stderr).unwrap();
            stderr
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("ktlab {args:?} took over two minutes");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Run::from(std::process::Output {
            status,
            stdout: reader.join().unwrap(),
            stderr: err_reader.join().unwrap(),
        })
    }

    fn ktlab_cmd(&self, p: &Project) -> Command {
        let mut c = p.cmd();
        c.env("SLURM_CONF", self.conf()).env("KTLAB_POLL_SECONDS", "0.3");
        c
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for f in self.pid_files.iter().rev() {
            let Some(pid) = pid_alive(f) else { continue };
            let _ = Command::new("kill").arg(pid.to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            if Path::new(&format!("/proc/{pid}")).exists() {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
        }
    }
}

/// Polls `status` until nothing is queued or running; returns its last output.
fn settle(c: &Cluster, p: &Project, args: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let r = c.ktlab(p, args).ok();
        if !r.stdout.contains("queued:") && !r.stdout.contains("running:") {
            return r.stdout;
        }
        assert!(Instant::now() < deadline, "jobs still queued or running:\n{}", r.stdout);
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn slurm_executor_on_a_real_cluster() {
    let c = match Cluster::start() {
        Ok(c) => c,
        Err(why) => {
            ktlab::skip::skip("slurm_executor_on_a_real_cluster", &why);
            return;
        }
    };
    let project = || {
        let p = Project::new();
        p.write("exp.toml", CONTRACT_HOG);
        p
    };

    // 1. A two-value sweep through Slurm gives the local executor's results.csv.
    let p = project();
    let t = Instant::now();
    let r = c.ktlab(&p, &["run", "exp.toml", "--executor", "slurm", "--wait"]).ok();
    let slurm_s = t.elapsed().as_secs_f64();
    assert!(r.stdout.contains("7 job(s) submitted, 0 already queued, 0 cached"), "{}", r.stdout);
    assert!(r.stdout.contains("7 computed, 0 cached, 0 failed"), "{}", r.stdout);
    let via_slurm = p.read("results/contract-hog/results.csv");
    let local = project();
    let t = Instant::now();
    local.ktlab(&["run", "exp.toml"]).ok();
    let local_s = t.elapsed().as_secs_f64();
    eprintln!("contract-hog from submission to results: slurm {slurm_s:.1} s, local executor {local_s:.1} s");
    assert_eq!(via_slurm, local.read("results/contract-hog/results.csv"));
    assert_eq!(via_slurm.lines().count(), 1 + 2 * 7, "{via_slurm}");
    let logs: Vec<String> = std::fs::read_dir(p.path("store/slurm/logs/contract-hog"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(logs.len(), 7, "{logs:?}");
    assert!(logs.iter().any(|l| l.starts_with("feat-shared-")), "{logs:?}");
    assert!(logs.iter().any(|l| l.starts_with("clusters-k=16-")), "{logs:?}");
    // A job whose entry exists exits 0 at once; a key the submission lacks fails.
    let submission = r.stdout.lines().find_map(|l| l.strip_prefix("submission: ")).unwrap();
    let feat = p
        .entries()
        .into_iter()
        .find_map(|e| e.strip_prefix("features/").map(String::from))
        .unwrap();
    c.ktlab(&p, &["exec-stage", "--submission", submission, "--key", &feat])
        .ok()
        .stderr_has("already in the store");
    c.ktlab(&p, &["exec-stage", "--submission", submission, "--key", &"0".repeat(64)])
        .fails(1)
        .stderr_has("has key 0000");
    // Everything cached: nothing is submitted and the tables are written at once.
    std::fs::remove_dir_all(p.path("results")).unwrap();
    let r = c.ktlab(&p, &["run", "exp.toml", "--executor", "slurm"]).ok();
    assert!(r.stdout.contains("0 job(s) submitted, 0 already queued, 7 cached"), "{}", r.stdout);
    assert_eq!(p.read("results/contract-hog/results.csv"), via_slurm);
    // --force: those jobs recompute, and --wait waits for them although entries exist.
    let r = c
        .ktlab(&p, &["run", "exp.toml", "--executor", "slurm", "--force", "quality", "--wait"])
        .ok();
    assert!(r.stdout.contains("2 job(s) submitted, 0 already queued, 5 cached"), "{}", r.stdout);
    assert!(r.stdout.contains("2 computed, 5 cached, 0 failed"), "{}", r.stdout);
    assert_eq!(p.read("results/contract-hog/results.csv"), via_slurm);
    let quality_logs = std::fs::read_dir(p.path("store/slurm/logs/contract-hog"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("quality-"))
        .count();
    assert_eq!(quality_logs, 4);

    // 2. The submitting process killed right after submission: the jobs (held here, so
    // that they are surely still queued) are reused by a second run, not submitted
    // again, and once released, their results arrive for `status` and `report`.
    let p = project();
    p.write(
        "held.toml",
        &format!("{CONTRACT_HOG}\n[slurm]\nsbatch_args = [\"--hold\"]\ntime = \"10:00\"\n"),
    );
    let mut child = c
        .ktlab_cmd(&p)
        .args(["run", "held.toml", "--executor", "slurm", "--wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.contains("job(s) submitted") {
            first = line;
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(first.contains("7 job(s) submitted"), "{first}");
    assert_eq!(c.jobs_in("PD").len(), 7);
    let r = c.ktlab(&p, &["run", "exp.toml", "--executor", "slurm"]).ok();
    assert!(r.stdout.contains("0 job(s) submitted, 7 already queued, 0 cached"), "{}", r.stdout);
    assert_eq!(c.jobs_in("PD").len(), 7, "a second copy was submitted");
    let status = c.ktlab(&p, &["status", "exp.toml"]).ok().stdout;
    assert!(status.contains("7 stage instances: 0 cached, 7 queued"), "{status}");
    assert!(status.contains("queued: job"), "{status}");
    c.ktlab(&p, &["report", "exp.toml"])
        .fails(1)
        .stderr_has("7 stage instance(s) of contract-hog are not in the store");
    let held = c.jobs_in("PD").join(",");
    let o = c.command("scontrol").args(["release", &held]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let status = settle(&c, &p, &["status", "exp.toml"]);
    assert!(status.contains("7 stage instances: 7 cached"), "{status}");
    assert!(!p.path("results").exists(), "the killed run wrote tables");
    c.ktlab(&p, &["report", "exp.toml"]).ok();
    assert_eq!(p.read("results/contract-hog/results.csv"), via_slurm);

    // 3. A failing stage: the scheduler cancels its dependents, `run --wait` and `status`
    // report it with its log; fixing the cause re-runs only what was missing.
    let p = project();
    p.write("exp.toml", &CONTRACT_HOG.replace("[4, 16]", "[4, 2000]"));
    // The job failed on its input (exec-stage exit 2): the run exits 2, as a local one does.
    let r = c.ktlab(&p, &["run", "exp.toml", "--executor", "slurm", "--wait"]).fails(2);
    r.stderr_has("clusters[k=2000]: job");
    r.stderr_has("labels[k=2000]: not run (an input failed)");
    r.stderr_has("quality[k=2000]: not run (an input failed)");
    assert!(r.stdout.contains("4 computed, 0 cached, 1 failed, 2 skipped"), "{}", r.stdout);
    let status = c.ktlab(&p, &["status", "exp.toml"]).ok().stdout;
    assert!(status.contains("4 cached, 1 failed, 2 cancelled"), "{status}");
    assert!(status.contains("cancelled: job"), "{status}");
    let failed = status.lines().find(|l| l.contains("failed: job")).expect("a failed line");
    let log = failed.rsplit("log: ").next().unwrap();
    assert!(log.contains("/store/slurm/logs/contract-hog/clusters-k=2000-"), "{failed}");
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains("k = 2000 is larger than the number of points (1000)"), "{text}");
    p.write("exp.toml", CONTRACT_HOG);
    let r = c.ktlab(&p, &["run", "exp.toml", "--executor", "slurm", "--wait"]).ok();
    assert!(r.stdout.contains("3 job(s) submitted, 0 already queued, 4 cached"), "{}", r.stdout);
    assert_eq!(p.read("results/contract-hog/results.csv"), via_slurm);
}

/// Resources are validated like every other key, and are not part of any key.
#[test]
fn resources_are_checked_and_not_keyed() {
    let p = Project::new();
    p.write("exp.toml", CONTRACT_HOG);
    let plain = p.ktlab(&["plan", "exp.toml"]).ok().stdout;
    let with = CONTRACT_HOG.replace(
        "iterations = 20\n",
        "iterations = 20\n[stages.clusters.resources]\ncpus = 2\nmem = \"4G\"\ntime = \"1:00:00\"\npartition = \"debug\"\n",
    );
    p.write(
        "exp.toml",
        &format!("{with}\n[slurm]\naccount = \"lab\"\nsetup = [\"module load x\"]\n"),
    );
    assert_eq!(p.ktlab(&["plan", "exp.toml"]).ok().stdout, plain);
    for (from, to, line_of, message) in [
        ("cpus = 2", "cpsu = 2", "cpsu", "`stages.clusters.resources.cpsu`: unknown key"),
        (
            "mem = \"4G\"",
            "mem = \"lots\"",
            "mem =",
            "`stages.clusters.resources.mem`: expected memory",
        ),
        ("time = \"1:00:00\"", "time = \"1:2:3:4\"", "time =", "expected a time limit"),
        ("cpus = 2", "cpus = 0", "cpus", "expected at least 1 CPU"),
        ("account = \"lab\"", "acount = \"lab\"", "acount", "`slurm.acount`: unknown key"),
    ] {
        let text = p.read("exp.toml").replace(from, to);
        let q = Project::new();
        q.write("exp.toml", &text);
        let line = text[..text.find(line_of).unwrap()].matches('\n').count() + 1;
        let r = q.ktlab(&["run", "exp.toml"]).fails(2);
        r.stderr_has(&format!("exp.toml:{line}:"));
        r.stderr_has(message);
    }
}

#[test]
fn report_needs_every_entry_and_slurm_needs_sbatch() {
    let p = Project::new();
    p.write("exp.toml", CONTRACT_HOG);
    p.ktlab(&["report", "exp.toml"])
        .fails(1)
        .stderr_has("7 stage instance(s) of contract-hog are not in the store");
    let status = p.ktlab(&["status", "exp.toml"]).ok().stdout;
    assert!(status.contains("missing: not submitted"), "{status}");
    let r = Run::from(
        p.cmd()
            .env("PATH", "/nonexistent")
            .args(["run", "exp.toml", "--executor", "slurm"])
            .output()
            .unwrap(),
    );
    r.fails(2).stderr_has("cannot run `sbatch`");
    p.ktlab(&["run", "exp.toml"]).ok();
    let from_run = p.read("results/contract-hog/results.csv");
    std::fs::remove_dir_all(p.path("results")).unwrap();
    p.ktlab(&["report", "exp.toml"]).ok();
    assert_eq!(p.read("results/contract-hog/results.csv"), from_run);
}
