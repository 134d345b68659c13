//! What architectures exist and the input size each is meant for, in one place, so that
//! configs, CLI help and tests enumerate the same set.
use super::net::Arch;

/// Every supported architecture, full-size ones before their small variants.
pub fn all_archs() -> &'static [Arch] {
    &Arch::ALL
}

/// Input side (px) an architecture is designed for: 224 for the full-size (ImageNet-style)
/// networks, 32 for the small (CIFAR-style) ones. Small variants accept up to ~96 px; any
/// size from [`Arch::min_image_size`] upwards runs.
pub fn default_image_size(arch: Arch) -> i64 {
    if arch.is_small() {
        32
    } else {
        224
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_complete_and_defaults_are_valid() {
        let names: Vec<String> = all_archs().iter().map(|a| a.to_string()).collect();
        assert_eq!(
            names,
            ["alexnet", "alexnet-small", "vgg16", "vgg16-small", "resnet18", "resnet18-small"]
        );
        for &arch in all_archs() {
            let size = default_image_size(arch);
            assert_eq!(size, if arch.is_small() { 32 } else { 224 });
            assert!(size >= arch.min_image_size(), "{arch}");
            assert!(super::super::net::NetConfig::new(arch).validate().is_ok());
        }
    }
}
