//! JWT bearer authentication for channels-binding.
