//! The `projector` binary. All of it lives in the library (`projector::cli::main`), so the
//! end-to-end tests can build the very same program.

fn main() -> std::process::ExitCode {
    projector::cli::main()
}
