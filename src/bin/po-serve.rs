fn main() {
    po::cli::main("po-serve", po::cli::serve::run)
}
