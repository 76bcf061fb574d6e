//! One short name for "the io_uring drivers are built": the `io-uring` feature on a Linux
//! target. The code says `#[cfg(uring)]` instead of repeating both conditions.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(uring)");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if linux && std::env::var_os("CARGO_FEATURE_IO_URING").is_some() {
        println!("cargo::rustc-cfg=uring");
    }
}
