//! What a stage asks a cluster scheduler for (`[stages.X.resources]`) and the
//! executor-wide defaults (`[slurm]`). Never part of a stage's key: where a result was
//! computed is not what it is.
use serde::Deserialize;

use super::{ConfigError, Node};

/// Compute resources of one job; `None` leaves the choice to the defaults or the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub gpus: Option<u32>,
    pub cpus: Option<u32>,
    /// Memory in MiB.
    pub mem_mib: Option<u64>,
    /// Time limit in seconds.
    pub time_s: Option<u64>,
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
}

/// The `[slurm]` section: default resources, shell lines run before each job's
/// command (e.g. `module load cuda`), and extra `sbatch` arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlurmSection {
    pub defaults: Resources,
    pub setup: Vec<String>,
    pub sbatch_args: Vec<String>,
}

#[derive(Deserialize)]
struct RawResources {
    gpus: Option<u32>,
    cpus: Option<u32>,
    mem: Option<toml::Value>,
    time: Option<toml::Value>,
    partition: Option<String>,
    account: Option<String>,
    qos: Option<String>,
}

#[derive(Deserialize)]
struct RawSlurm {
    gpus: Option<u32>,
    cpus: Option<u32>,
    mem: Option<toml::Value>,
    time: Option<toml::Value>,
    partition: Option<String>,
    account: Option<String>,
    qos: Option<String>,
    #[serde(default)]
    setup: Vec<String>,
    #[serde(default)]
    sbatch_args: Vec<String>,
}

impl Resources {
    /// Decodes and validates a resources table; `prefix` is its key path.
    pub fn decode(node: &Node, prefix: &str) -> Result<Resources, ConfigError> {
        if node.as_table().is_none() {
            return Err(node.error(prefix, format!("expected a table, found {}", node.type_name())));
        }
        from_parts(node, prefix, node.decode(prefix)?)
    }

    /// Field by field: `self` where set, else `defaults`.
    pub fn or(&self, defaults: &Resources) -> Resources {
        Resources {
            gpus: self.gpus.or(defaults.gpus),
            cpus: self.cpus.or(defaults.cpus),
            mem_mib: self.mem_mib.or(defaults.mem_mib),
            time_s: self.time_s.or(defaults.time_s),
            partition: self.partition.clone().or_else(|| defaults.partition.clone()),
            account: self.account.clone().or_else(|| defaults.account.clone()),
            qos: self.qos.clone().or_else(|| defaults.qos.clone()),
        }
    }

    /// `sbatch` options asking for these resources.
    pub fn sbatch_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(g) = self.gpus.filter(|&g| g > 0) {
            out.push(format!("--gres=gpu:{g}"));
        }
        if let Some(c) = self.cpus {
            out.push(format!("--cpus-per-task={c}"));
        }
        if let Some(m) = self.mem_mib {
            out.push(format!("--mem={m}M"));
        }
        if let Some(t) = self.time_s {
            out.push(format!("--time={}", format_time(t)));
        }
        for (flag, v) in [("partition", &self.partition), ("account", &self.account), ("qos", &self.qos)] {
            if let Some(v) = v {
                out.push(format!("--{flag}={v}"));
            }
        }
        out
    }
}

impl SlurmSection {
    pub fn decode(node: &Node) -> Result<SlurmSection, ConfigError> {
        if node.as_table().is_none() {
            return Err(node.error("slurm", format!("expected a table, found {}", node.type_name())));
        }
        let raw: RawSlurm = node.decode("slurm")?;
        let defaults = from_parts(
            node,
            "slurm",
            RawResources {
                gpus: raw.gpus,
                cpus: raw.cpus,
                mem: raw.mem,
                time: raw.time,
                partition: raw.partition,
                account: raw.account,
                qos: raw.qos,
            },
        )?;
        for (i, a) in raw.sbatch_args.iter().enumerate() {
            if !a.starts_with('-') {
                let n = node.lookup(&format!("sbatch_args.{i}")).unwrap_or(node);
                return Err(n.error(
                    &format!("slurm.sbatch_args[{i}]"),
                    format!("expected an option such as \"--constraint=a100\", found \"{a}\""),
                ));
            }
        }
        Ok(SlurmSection {
            defaults,
            setup: raw.setup,
            sbatch_args: raw.sbatch_args,
        })
    }
}

fn from_parts(node: &Node, prefix: &str, raw: RawResources) -> Result<Resources, ConfigError> {
    let at = |key: &str| node.lookup(key).unwrap_or(node);
    let path = |key: &str| format!("{prefix}.{key}");
    if raw.cpus == Some(0) {
        return Err(at("cpus").error(&path("cpus"), "expected at least 1 CPU, found 0"));
    }
    let mem_mib = match &raw.mem {
        None => None,
        Some(v) => Some(parse_mem(v).map_err(|m| at("mem").error(&path("mem"), m))?),
    };
    let time_s = match &raw.time {
        None => None,
        Some(v) => Some(parse_time(v).map_err(|m| at("time").error(&path("time"), m))?),
    };
    for (key, v) in [("partition", &raw.partition), ("account", &raw.account), ("qos", &raw.qos)] {
        if let Some(s) = v {
            if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(at(key).error(&path(key), format!("expected a name without spaces, found \"{s}\"")));
            }
        }
    }
    Ok(Resources {
        gpus: raw.gpus,
        cpus: raw.cpus,
        mem_mib,
        time_s,
        partition: raw.partition,
        account: raw.account,
        qos: raw.qos,
    })
}

/// `4096` (MiB), `"500M"`, `"16G"`, `"1T"` (also `"16GB"`) -> MiB.
pub fn parse_mem(v: &toml::Value) -> Result<u64, String> {
    const EXPECTED: &str = "expected memory such as \"16G\", \"500M\" or an integer number of MiB";
    let mib = match v {
        toml::Value::Integer(i) if *i > 0 => *i as u64,
        toml::Value::String(s) => {
            let t = s.trim();
            let t = t.strip_suffix(['B', 'b']).unwrap_or(t);
            let (num, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
                Some((i, _)) => (&t[..i], &t[i..]),
                None => (t, "M"),
            };
            let n: u64 = num.parse().map_err(|_| format!("{EXPECTED}, found \"{s}\""))?;
            let factor = match unit.to_ascii_uppercase().as_str() {
                "K" => return Ok(n.div_ceil(1024).max(1)),
                "M" => 1,
                "G" => 1024,
                "T" => 1024 * 1024,
                _ => return Err(format!("{EXPECTED}, found \"{s}\"")),
            };
            n.checked_mul(factor).ok_or_else(|| format!("memory \"{s}\" is too large"))?
        }
        other => return Err(format!("{EXPECTED}, found {other}")),
    };
    if mib == 0 {
        return Err(format!("{EXPECTED}, found 0"));
    }
    Ok(mib)
}

/// Slurm's time forms: minutes, `"MM:SS"`, `"HH:MM:SS"`, `"D-HH"`, `"D-HH:MM"`,
/// `"D-HH:MM:SS"`, or an integer number of minutes -> seconds.
pub fn parse_time(v: &toml::Value) -> Result<u64, String> {
    const EXPECTED: &str = "expected a time limit such as \"2:00:00\", \"1-12:00:00\" or an integer number of minutes";
    let secs = match v {
        toml::Value::Integer(i) if *i > 0 => (*i as u64) * 60,
        toml::Value::String(s) => {
            let bad = || format!("{EXPECTED}, found \"{s}\"");
            let num = |p: &str| -> Result<u64, String> {
                if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) || p.len() > 9 {
                    return Err(bad());
                }
                p.parse().map_err(|_| bad())
            };
            let (days, rest) = match s.trim().split_once('-') {
                Some((d, r)) => (Some(num(d)?), r),
                None => (None, s.trim()),
            };
            let parts = rest.split(':').map(num).collect::<Result<Vec<u64>, String>>()?;
            match (days, parts.as_slice()) {
                (None, [m]) => m * 60,
                (None, [m, sec]) => m * 60 + sec,
                (None, [h, m, sec]) => h * 3600 + m * 60 + sec,
                (Some(d), [h]) => d * 86400 + h * 3600,
                (Some(d), [h, m]) => d * 86400 + h * 3600 + m * 60,
                (Some(d), [h, m, sec]) => d * 86400 + h * 3600 + m * 60 + sec,
                _ => return Err(bad()),
            }
        }
        other => return Err(format!("{EXPECTED}, found {other}")),
    };
    if secs == 0 {
        return Err(format!("{EXPECTED}, found a zero time limit"));
    }
    Ok(secs)
}

/// Seconds as Slurm's `D-HH:MM:SS`.
pub fn format_time(secs: u64) -> String {
    let (d, rest) = (secs / 86400, secs % 86400);
    format!("{d}-{:02}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> toml::Value {
        toml::Value::String(x.into())
    }

    #[test]
    fn memory_forms() {
        assert_eq!(parse_mem(&toml::Value::Integer(4096)), Ok(4096));
        assert_eq!(parse_mem(&s("500M")), Ok(500));
        assert_eq!(parse_mem(&s("16G")), Ok(16384));
        assert_eq!(parse_mem(&s("16GB")), Ok(16384));
        assert_eq!(parse_mem(&s("1t")), Ok(1 << 20));
        assert_eq!(parse_mem(&s("2048")), Ok(2048));
        assert!(parse_mem(&s("lots")).is_err());
        assert!(parse_mem(&s("4X")).is_err());
        assert!(parse_mem(&toml::Value::Integer(0)).is_err());
        assert!(parse_mem(&toml::Value::Float(1.5)).is_err());
    }

    #[test]
    fn time_forms() {
        assert_eq!(parse_time(&toml::Value::Integer(90)), Ok(5400));
        assert_eq!(parse_time(&s("30")), Ok(1800));
        assert_eq!(parse_time(&s("30:15")), Ok(1815));
        assert_eq!(parse_time(&s("2:00:00")), Ok(7200));
        assert_eq!(parse_time(&s("1-12")), Ok(129600));
        assert_eq!(parse_time(&s("1-00:30")), Ok(88200));
        assert_eq!(parse_time(&s("2-01:02:03")), Ok(2 * 86400 + 3723));
        for bad in ["", "1:2:3:4", "a:00", "-5", "1-", "0"] {
            assert!(parse_time(&s(bad)).is_err(), "{bad}");
        }
        assert_eq!(format_time(2 * 86400 + 3723), "2-01:02:03");
    }

    #[test]
    fn stage_values_override_defaults_and_render_as_sbatch_options() {
        let stage = Resources {
            gpus: Some(1),
            time_s: Some(3600),
            ..Default::default()
        };
        let defaults = Resources {
            gpus: Some(0),
            partition: Some("gpu".into()),
            mem_mib: Some(2048),
            ..Default::default()
        };
        assert_eq!(
            stage.or(&defaults).sbatch_args(),
            ["--gres=gpu:1", "--mem=2048M", "--time=0-01:00:00", "--partition=gpu"]
        );
    }
}
