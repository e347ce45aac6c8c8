fn main() {
    po::cli::main("po-spawn", po::cli::spawn::run)
}
