//! The engine behind `reposerve`. Not implemented yet: see the project's open issues.
