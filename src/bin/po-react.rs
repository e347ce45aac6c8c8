fn main() {
    po::cli::main("po-react", po::cli::react::run)
}
