//! The page size settings.

/// `DEFAULT_PAGE_SIZE` and `MAX_PAGE_SIZE`.
///
/// ```
/// use channels_binding_core::page_size::PageSize;
///
/// let sizes = PageSize::new(25, 100).unwrap();
/// assert_eq!(sizes.limit(None), 25);
/// assert_eq!(sizes.limit(Some(1000)), 100);
/// assert_eq!(sizes.limit(Some(0)), 1);
/// assert!(PageSize::new(200, 100).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize {
    default: u32,
    max: u32,
}

/// A page size setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PageSizeError {
    /// A size of zero.
    #[error("page sizes must be at least 1")]
    Zero,
    /// The default is larger than the maximum.
    #[error("DEFAULT_PAGE_SIZE ({default}) is larger than MAX_PAGE_SIZE ({max})")]
    DefaultAboveMax {
        /// The default asked for.
        default: u32,
        /// The maximum asked for.
        max: u32,
    },
}

impl PageSize {
    /// The protocol's defaults: 25 per page, at most 100.
    pub const DEFAULT: PageSize = PageSize { default: 25, max: 100 };

    /// Page sizes with this default and maximum.
    ///
    /// # Errors
    ///
    /// When either is zero or the default exceeds the maximum.
    pub fn new(default: u32, max: u32) -> Result<Self, PageSizeError> {
        if default == 0 || max == 0 {
            return Err(PageSizeError::Zero);
        }
        if default > max {
            return Err(PageSizeError::DefaultAboveMax { default, max });
        }
        Ok(Self { default, max })
    }

    /// `DEFAULT_PAGE_SIZE`.
    pub fn default_size(&self) -> u32 {
        self.default
    }

    /// `MAX_PAGE_SIZE`.
    pub fn max_size(&self) -> u32 {
        self.max
    }

    /// The limit to use for a requested one: the default when absent,
    /// clamped to `[1, max]` otherwise.
    pub fn limit(&self, requested: Option<i64>) -> u32 {
        match requested {
            None => self.default,
            Some(n) => u32::try_from(n.clamp(1, i64::from(self.max))).unwrap_or(self.max),
        }
    }
}

impl Default for PageSize {
    fn default() -> Self {
        Self::DEFAULT
    }
}
