//! The `tandem` program; everything lives in the library ([`tandem::cli`]).

fn main() -> std::process::ExitCode {
    tandem::cli::main()
}
