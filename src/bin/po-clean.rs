fn main() {
    po::cli::main("po-clean", po::cli::clean::run)
}
