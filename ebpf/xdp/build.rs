//! Re-run the (nested, aya-build driven) BPF build when `bpf-linker` changes, e.g. after
//! `bash .ci/install` reinstalled it for a new toolchain (aya-template pattern).

fn main() {
    match which::which("bpf-linker") {
        Ok(path) => println!("cargo:rerun-if-changed={}", path.display()),
        // Nothing to watch: tandem-datapath's build script reports the missing linker clearly.
        Err(_) => println!("cargo:rerun-if-env-changed=PATH"),
    }
}
