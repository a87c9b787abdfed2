//! Fetching, verifying and extracting one package.
