fn main() {
    // A supervisor (po-spawn re-executed with its spec in the environment)
    // starts before any argument parsing: it runs once per task.
    if let Some(code) = po::run::supervisor::from_env() {
        std::process::exit(code);
    }
    po::cli::main("po-spawn", po::cli::spawn::run)
}
