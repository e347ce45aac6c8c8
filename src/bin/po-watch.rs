fn main() {
    po::cli::main("po-watch", po::cli::watch::run)
}
