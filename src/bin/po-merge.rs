fn main() {
    po::cli::main("po-merge", po::cli::merge::run)
}
