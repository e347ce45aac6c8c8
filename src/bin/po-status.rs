fn main() {
    po::cli::main("po-status", po::cli::status::run)
}
