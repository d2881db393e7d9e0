//! Links the bootable image with `link.ld`, and only the image: host builds
//! and tests of the kernel library never see the linker script.
//!
//! Also embeds the deployment: `cargo xtask build` writes a directory with
//! `kconfig.bin` (a postcard `faultline_ipc::kconfig::KernelConfig`) and
//! `images/<i>.elf` (one per service image) and names it in
//! `FAULTLINE_DEPLOYMENT_DIR`. This script turns it into
//! `$OUT_DIR/deployment.rs`, which the kernel `include!`s:
//!
//! ```ignore
//! pub static CONFIG: &[u8] = include_bytes!("<dir>/kconfig.bin");
//! pub static IMAGES: &[&[u8]] = &[include_bytes!("<dir>/images/0.elf"), ...];
//! ```
//!
//! Without the variable (host builds, deployments without services) both
//! are empty: a kernel with no services.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=link.ld");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg-bins=-T{dir}/link.ld");
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
    }
    embed_deployment();
}

/// Writes `$OUT_DIR/deployment.rs` from `FAULTLINE_DEPLOYMENT_DIR`.
fn embed_deployment() {
    println!("cargo:rerun-if-env-changed=FAULTLINE_DEPLOYMENT_DIR");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let code = match std::env::var_os("FAULTLINE_DEPLOYMENT_DIR") {
        Some(dir) if !dir.is_empty() => deployment_code(Path::new(&dir)),
        _ => "/// No deployment: a kernel with no services.\n\
              pub static CONFIG: &[u8] = &[];\n\
              /// No service images.\n\
              pub static IMAGES: &[&[u8]] = &[];\n"
            .to_string(),
    };
    let path = out.join("deployment.rs");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(code.as_str()) {
        std::fs::write(&path, code).expect("writing deployment.rs");
    }
}

fn deployment_code(dir: &Path) -> String {
    assert!(
        dir.is_absolute(),
        "FAULTLINE_DEPLOYMENT_DIR must be absolute, not {}",
        dir.display()
    );
    let config = dir.join("kconfig.bin");
    assert!(config.is_file(), "{} is missing", config.display());
    let images_dir = dir.join("images");
    println!("cargo:rerun-if-changed={}", config.display());
    println!("cargo:rerun-if-changed={}", images_dir.display());
    let mut count = 0;
    if let Ok(entries) = std::fs::read_dir(&images_dir) {
        count = entries.count();
    }
    let mut code = String::new();
    writeln!(
        code,
        "/// postcard-encoded `faultline_ipc::kconfig::KernelConfig`.\n\
         pub static CONFIG: &[u8] = include_bytes!({});",
        literal(&config)
    )
    .unwrap();
    code.push_str(
        "/// Service ELF images, indexed by `ServiceConfig::image`.\npub static IMAGES: &[&[u8]] = &[\n",
    );
    for i in 0..count {
        let image = images_dir.join(format!("{i}.elf"));
        assert!(
            image.is_file(),
            "{} is missing: images/ must hold exactly 0.elf to {}.elf",
            image.display(),
            count - 1
        );
        println!("cargo:rerun-if-changed={}", image.display());
        writeln!(code, "    include_bytes!({}),", literal(&image)).unwrap();
    }
    code.push_str("];\n");
    code
}

/// A Rust string literal for a path.
fn literal(path: &Path) -> String {
    let s = path
        .to_str()
        .unwrap_or_else(|| panic!("{} is not UTF-8", path.display()));
    format!("{s:?}")
}
