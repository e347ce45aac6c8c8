fn main() {
    po::cli::main("po-parse", po::cli::parse::run)
}
