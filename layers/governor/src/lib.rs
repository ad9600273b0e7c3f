//! Rate limiting for channels-binding.
