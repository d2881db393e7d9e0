//! Links the service image with userlib's `service.ld` (bare metal only).
fn main() {
    println!("cargo:rerun-if-changed=../userlib/service.ld");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        let dir = env!("CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg-bins=-T{dir}/../userlib/service.ld");
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
    }
}
