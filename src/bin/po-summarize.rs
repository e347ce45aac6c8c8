fn main() {
    po::cli::main("po-summarize", po::cli::summarize::run)
}
