//! Go release numbers, as the build information and DWARF producer strings
//! spell them (`go1.22.10`, `go1.23rc1`, `devel go1.24-abcdef`).

use std::fmt;

use serde::Serialize;

/// A Go release: `go1.<minor>.<patch>`. Pre-releases (`rc`, `beta`) keep
/// patch 0, because their runtime layouts are those of the release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct GoVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl GoVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> GoVersion {
        GoVersion { major, minor, patch }
    }

    /// Parses the first `go1.N[.P]` found in `text`: a plain version, a
    /// pre-release, or a development toolchain's `devel go1.N-hash` form.
    pub fn parse(text: &str) -> Option<GoVersion> {
        let start = text.find("go1.")?;
        let rest = text.get(start + 2..)?;
        let mut numbers = [0u32; 3];
        let mut count = 0;
        for part in rest.split('.') {
            let digits: &str = &part[..part.find(|c: char| !c.is_ascii_digit()).unwrap_or(part.len())];
            if digits.is_empty() {
                break;
            }
            let value = digits.parse().ok()?;
            numbers[count] = value;
            count += 1;
            if count == numbers.len() || digits.len() != part.len() {
                break;
            }
        }
        if count < 2 {
            return None;
        }
        Some(GoVersion::new(numbers[0], numbers[1], numbers[2]))
    }

    /// The release family, `1.N`, that layouts are keyed by.
    pub fn minor_release(self) -> (u32, u32) {
        (self.major, self.minor)
    }
}

impl fmt::Display for GoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "go{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_release_forms() {
        assert_eq!(GoVersion::parse("go1.22.10"), Some(GoVersion::new(1, 22, 10)));
        assert_eq!(GoVersion::parse("go1.19"), Some(GoVersion::new(1, 19, 0)));
        assert_eq!(GoVersion::parse("go1.23rc1"), Some(GoVersion::new(1, 23, 0)));
        assert_eq!(GoVersion::parse("devel go1.24-abcdef Tue"), Some(GoVersion::new(1, 24, 0)));
        assert_eq!(
            GoVersion::parse("Go cmd/compile go1.21.13; regabi"),
            Some(GoVersion::new(1, 21, 13))
        );
        assert_eq!(GoVersion::parse("go1.25.5 X:nocoverageredesign"), Some(GoVersion::new(1, 25, 5)));
    }

    #[test]
    fn parse_rejects_non_versions() {
        assert_eq!(GoVersion::parse("gcc 12"), None);
        assert_eq!(GoVersion::parse("go1."), None);
        assert_eq!(GoVersion::parse(""), None);
    }

    #[test]
    fn versions_order_by_number() {
        assert!(GoVersion::new(1, 9, 0) < GoVersion::new(1, 19, 0));
        assert!(GoVersion::new(1, 22, 10) > GoVersion::new(1, 22, 9));
    }
}
