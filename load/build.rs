//! Records the git revision `load` was built from (`LOAD_GIT_REVISION`), for the
//! environment of saved runs; "unknown" outside a git checkout.

use std::process::Command;

fn main() {
    let revision = Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if let Some(revision) = revision {
        println!("cargo:rustc-env=LOAD_GIT_REVISION={revision}");
    }
    // A new commit (HEAD, or the branch it points at) or a changed index.
    for path in ["../.git/HEAD", "../.git/index", "../.git/refs/heads"] {
        println!("cargo:rerun-if-changed={path}");
    }
}
