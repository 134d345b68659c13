//! The context-free network of Jigsaw (Noroozi & Favaro 2016): one backbone, its weights
//! shared by all nine tiles; a fully connected layer per tile (shared too); the nine
//! results concatenated; two fully connected layers; logits over the permutation set.
//!
//! The backbone's variables carry the same names as in a plain network of the same
//! architecture (`features.*`), the head's are under `jigsaw.*`, so a `features` or
//! `train` stage reads or copies the backbone of a Jigsaw model directly.
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::models::error::ModelError;
use crate::models::{NetConfig, Network};

/// The head's sizes, recorded in `model.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JigsawHead {
    pub tiles: i64,
    /// Per-tile fully connected layer (`fc6`).
    pub tile_units: i64,
    /// The layer over the concatenated tiles (`fc7`).
    pub hidden: i64,
    /// Output classes: the permutations.
    pub permutations: i64,
}

impl JigsawHead {
    /// Sizes for an architecture: 1024 per tile and 4096 after concatenation at full size
    /// (the original CFN), 256 and 1024 for the `-small` variants; times the width.
    pub fn for_config(cfg: &NetConfig, permutations: usize) -> JigsawHead {
        let (tile, hidden) = if cfg.arch.is_small() { (256.0, 1024.0) } else { (1024.0, 4096.0) };
        JigsawHead {
            tiles: 9,
            tile_units: ((tile * cfg.width).round() as i64).max(8),
            hidden: ((hidden * cfg.width).round() as i64).max(16),
            permutations: permutations as i64,
        }
    }
}

pub struct ContextFree {
    pub backbone: Network,
    fc6: nn::Linear,
    fc7: nn::Linear,
    fc8: nn::Linear,
    tiles: i64,
}

impl ContextFree {
    /// `root` is the variable store's root; `cfg.image_size` is the tile side.
    pub fn new(root: &nn::Path, cfg: &NetConfig, head: &JigsawHead) -> Result<ContextFree, ModelError> {
        let backbone = Network::backbone(root, cfg)?;
        let p = root / "jigsaw";
        let d = backbone.feature_dim();
        Ok(ContextFree {
            fc6: nn::linear(&p / "fc6", d, head.tile_units, Default::default()),
            fc7: nn::linear(&p / "fc7", head.tiles * head.tile_units, head.hidden, Default::default()),
            fc8: nn::linear(&p / "fc8", head.hidden, head.permutations, Default::default()),
            backbone,
            tiles: head.tiles,
        })
    }

    /// Logits `[B, permutations]` for tiles `[B, tiles, C, T, T]`.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let s = x.size();
        let b = s[0];
        let per_tile = self
            .backbone
            .forward_features(&x.reshape([b * self.tiles, s[2], s[3], s[4]]), train) // [B*9, D]
            .apply(&self.fc6)
            .relu(); // [B*9, tile_units]
        per_tile
            .reshape([b, -1]) // [B, 9 * tile_units]
            .apply(&self.fc7)
            .relu()
            .dropout(0.5, train)
            .apply(&self.fc8) // [B, permutations]
    }
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind};

    use super::*;
    use crate::models::net::testing;
    use crate::models::Arch;

    #[test]
    fn shapes_and_shared_backbone_names() {
        for arch in [Arch::AlexnetSmall, Arch::Vgg16Small] {
            let cfg = testing::cfg(arch, 0.25, true, 16);
            let vs = nn::VarStore::new(Device::Cpu);
            let head = JigsawHead::for_config(&cfg, 30);
            let net = ContextFree::new(&vs.root(), &cfg, &head).unwrap();
            let x = Tensor::randn([2, 9, 3, 16, 16], (Kind::Float, Device::Cpu));
            assert_eq!(net.forward(&x, true).size(), [2, 30]);
            assert_eq!(net.forward(&x, false).size(), [2, 30]);
            // The backbone's variables are those of a plain backbone of the same config.
            let plain = nn::VarStore::new(Device::Cpu);
            Network::backbone(&plain.root(), &cfg).unwrap();
            let names: Vec<String> = vs.variables().into_keys().filter(|k| !k.starts_with("jigsaw.")).collect();
            let mut expect: Vec<String> = plain.variables().into_keys().collect();
            let mut names = names;
            names.sort();
            expect.sort();
            assert_eq!(names, expect, "{arch}");
        }
    }
}
