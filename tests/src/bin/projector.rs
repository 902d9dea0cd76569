//! The `projector` program, built inside the tests package so its integration tests can run
//! the real binary (`CARGO_BIN_EXE_projector`); identical to host/src/main.rs.

fn main() -> std::process::ExitCode {
    projector::cli::main()
}
