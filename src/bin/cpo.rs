fn main() {
    po::cli::main("cpo", po::cli::cpo::run)
}
