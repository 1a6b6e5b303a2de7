//! The `tandem` program, built inside `tandem-hwtest` so the privileged tests can run it as
//! `env!("CARGO_BIN_EXE_tandem-hw")`.

fn main() -> std::process::ExitCode {
    tandem::cli::main()
}
