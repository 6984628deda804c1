//! The module information text the go command embeds in a binary
//! (`runtime.modinfo`): one record per line, with tab-separated fields.
//!
//! ```text
//! path    example.com/cmd/server
//! mod     example.com/server   v1.2.3   h1:...
//! dep     golang.org/x/sys     v0.1.0   h1:...
//! dep     example.com/lib      v1.0.0
//! =>      ../lib               (devel)
//! build   -ldflags="-s -w"
//! build   CGO_ENABLED=0
//! ```
//!
//! Parsing follows Go's `runtime/debug.ParseBuildInfo` (lines without a known
//! prefix are skipped, so is a last line without a newline) and formatting
//! follows `BuildInfo.String`, so that a parse followed by a format gives the
//! text `go version -m` prints.

use serde::Serialize;

use super::goquote;

/// A module: the main module, a dependency, or a dependency's replacement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Module {
    /// The module path, such as `golang.org/x/sys`.
    pub path: String,
    /// The module version, such as `v0.1.0`, or `(devel)` for the main module.
    pub version: String,
    /// The go.sum checksum (`h1:...`); empty when the go command recorded none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sum: String,
    /// The module that replaced this one (a `replace` directive in go.mod).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace: Option<Box<Module>>,
}

/// One `build` line: a setting that influenced the build, such as
/// `-trimpath=true`, `CGO_ENABLED=1` or `vcs.revision=...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildSetting {
    pub key: String,
    pub value: String,
}

/// The records of a module information text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ModInfo {
    pub path: Option<String>,
    pub main: Option<Module>,
    pub deps: Vec<Module>,
    pub settings: Vec<BuildSetting>,
}

/// The problem with one line of module information.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModInfoErrorKind {
    #[error("module line has {found} tab-separated fields, expected 2 or 3")]
    ModuleFields { found: usize },
    #[error("replacement line has {found} tab-separated fields, expected 3")]
    ReplacementFields { found: usize },
    #[error("replacement line does not follow a module line")]
    ReplacementWithoutModule,
    #[error("build line has no '='")]
    MissingEquals,
    #[error("build line has an empty key")]
    MissingKey,
    #[error("build line has an invalid quoted key")]
    InvalidQuotedKey,
    #[error("build line has {found:?} after its quoted key, expected '='")]
    UnexpectedAfterQuotedKey { found: Option<char> },
    #[error("build line key {key:?} must be quoted")]
    UnquotedKey { key: String },
    #[error("build line has an invalid quoted value")]
    InvalidQuotedValue,
    #[error("build line value {value:?} must be quoted")]
    UnquotedValue { value: String },
}

/// A line of module information that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("module information line {line} (byte offset {offset:#x}): {kind}")]
pub struct ModInfoError {
    /// The line number, from 1.
    pub line: usize,
    /// The byte offset of the line's start in the module information text.
    pub offset: usize,
    #[source]
    pub kind: ModInfoErrorKind,
}

const PATH_PREFIX: &str = "path\t";
const MOD_PREFIX: &str = "mod\t";
const DEP_PREFIX: &str = "dep\t";
const REPLACEMENT_PREFIX: &str = "=>\t";
const BUILD_PREFIX: &str = "build\t";

/// The module a following `=>` line replaces.
#[derive(Clone, Copy)]
enum LastModule {
    None,
    Main,
    Dep(usize),
}

/// Parses module information text, with its sentinel framing already removed.
pub(crate) fn parse(text: &str) -> Result<ModInfo, ModInfoError> {
    let mut info = ModInfo::default();
    let mut last = LastModule::None;
    let mut rest = text;
    let mut line_number = 1;
    let mut offset = 0;
    // Every iteration consumes a line and its newline, so the loop ends.
    while let Some((line, after)) = rest.split_once('\n') {
        let fail = |kind| ModInfoError {
            line: line_number,
            offset,
            kind,
        };
        if let Some(path) = line.strip_prefix(PATH_PREFIX) {
            info.path = Some(path.to_owned());
        } else if let Some(fields) = line.strip_prefix(MOD_PREFIX) {
            info.main = Some(parse_module(fields).map_err(fail)?);
            last = LastModule::Main;
        } else if let Some(fields) = line.strip_prefix(DEP_PREFIX) {
            info.deps.push(parse_module(fields).map_err(fail)?);
            last = LastModule::Dep(info.deps.len() - 1);
        } else if let Some(fields) = line.strip_prefix(REPLACEMENT_PREFIX) {
            let replacement = parse_replacement(fields).map_err(fail)?;
            let target = match last {
                LastModule::None => None,
                LastModule::Main => info.main.as_mut(),
                LastModule::Dep(index) => info.deps.get_mut(index),
            };
            let Some(target) = target else {
                return Err(fail(ModInfoErrorKind::ReplacementWithoutModule));
            };
            target.replace = Some(Box::new(replacement));
            last = LastModule::None;
        } else if let Some(setting) = line.strip_prefix(BUILD_PREFIX) {
            info.settings.push(parse_setting(setting).map_err(fail)?);
        }
        offset += line.len() + 1;
        line_number += 1;
        rest = after;
    }
    // Go's `BuildInfo.String` never writes an empty main module, and
    // `go version -m` prints none either.
    if info
        .main
        .as_ref()
        .is_some_and(|main| *main == Module::default())
    {
        info.main = None;
    }
    Ok(info)
}

fn parse_module(fields: &str) -> Result<Module, ModInfoErrorKind> {
    let columns: Vec<&str> = fields.split('\t').collect();
    match columns.as_slice() {
        [path, version] => Ok(Module {
            path: (*path).to_owned(),
            version: (*version).to_owned(),
            ..Module::default()
        }),
        [path, version, sum] => Ok(Module {
            path: (*path).to_owned(),
            version: (*version).to_owned(),
            sum: (*sum).to_owned(),
            replace: None,
        }),
        _ => Err(ModInfoErrorKind::ModuleFields {
            found: columns.len(),
        }),
    }
}

fn parse_replacement(fields: &str) -> Result<Module, ModInfoErrorKind> {
    let columns: Vec<&str> = fields.split('\t').collect();
    match columns.as_slice() {
        [path, version, sum] => Ok(Module {
            path: (*path).to_owned(),
            version: (*version).to_owned(),
            sum: (*sum).to_owned(),
            replace: None,
        }),
        _ => Err(ModInfoErrorKind::ReplacementFields {
            found: columns.len(),
        }),
    }
}

fn parse_setting(text: &str) -> Result<BuildSetting, ModInfoErrorKind> {
    let (key, raw_value) = match text.as_bytes().first() {
        None => return Err(ModInfoErrorKind::MissingEquals),
        Some(b'=') => return Err(ModInfoErrorKind::MissingKey),
        Some(b'"' | b'`') => {
            let key_len =
                goquote::quoted_prefix_len(text).ok_or(ModInfoErrorKind::InvalidQuotedKey)?;
            let raw_key = text
                .get(..key_len)
                .ok_or(ModInfoErrorKind::InvalidQuotedKey)?;
            let after = text.get(key_len..).unwrap_or_default();
            let mut after_chars = after.chars();
            match after_chars.next() {
                Some('=') => {}
                found => return Err(ModInfoErrorKind::UnexpectedAfterQuotedKey { found }),
            }
            let key = goquote::unquote(raw_key).ok_or(ModInfoErrorKind::InvalidQuotedKey)?;
            (key, after_chars.as_str())
        }
        Some(_) => {
            let (key, value) = text
                .split_once('=')
                .ok_or(ModInfoErrorKind::MissingEquals)?;
            if needs_quoted_key(key) {
                return Err(ModInfoErrorKind::UnquotedKey {
                    key: key.to_owned(),
                });
            }
            (key.to_owned(), value)
        }
    };

    let value = match raw_value.as_bytes().first() {
        None => String::new(),
        Some(b'"' | b'`') => {
            goquote::unquote(raw_value).ok_or(ModInfoErrorKind::InvalidQuotedValue)?
        }
        Some(_) => {
            if needs_quoted_value(raw_value) {
                return Err(ModInfoErrorKind::UnquotedValue {
                    value: raw_value.to_owned(),
                });
            }
            raw_value.to_owned()
        }
    };
    Ok(BuildSetting { key, value })
}

/// Go quotes a setting key that is empty or contains `=`, white space or a quote.
fn needs_quoted_key(key: &str) -> bool {
    key.is_empty() || key.contains(['=', ' ', '\t', '\r', '\n', '"', '`'])
}

/// Go quotes a setting value that contains white space or a quote.
fn needs_quoted_value(value: &str) -> bool {
    value.contains([' ', '\t', '\r', '\n', '"', '`'])
}

/// Writes the records as Go's `BuildInfo.String` does, without its `go` line.
pub(crate) fn format(info: &ModInfo, out: &mut String) {
    if let Some(path) = &info.path {
        if !path.is_empty() {
            push_line(out, &["path", path]);
        }
    }
    if let Some(main) = &info.main {
        format_module(out, "mod", main);
    }
    for dep in &info.deps {
        format_module(out, "dep", dep);
    }
    for setting in &info.settings {
        let key = if needs_quoted_key(&setting.key) {
            goquote::quote(&setting.key)
        } else {
            setting.key.clone()
        };
        let value = if needs_quoted_value(&setting.value) {
            goquote::quote(&setting.value)
        } else {
            setting.value.clone()
        };
        out.push_str("build\t");
        out.push_str(&key);
        out.push('=');
        out.push_str(&value);
        out.push('\n');
    }
}

fn format_module(out: &mut String, word: &str, module: &Module) {
    out.push_str(word);
    out.push('\t');
    out.push_str(&module.path);
    out.push('\t');
    out.push_str(&module.version);
    match &module.replace {
        None => {
            out.push('\t');
            out.push_str(&module.sum);
        }
        Some(replacement) => {
            // Go ends the replaced module's line, writes the `=>` line with
            // its own newline, and then ends the outer record with one more,
            // so a replacement is followed by an empty line.
            out.push('\n');
            format_module(out, "=>", replacement);
        }
    }
    out.push('\n');
}

fn push_line(out: &mut String, fields: &[&str]) {
    out.push_str(&fields.join("\t"));
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Module information text assembled one record at a time.
    struct ModInfoText(String);

    impl ModInfoText {
        fn new() -> Self {
            ModInfoText(String::new())
        }
        fn line(mut self, fields: &[&str]) -> Self {
            self.0.push_str(&fields.join("\t"));
            self.0.push('\n');
            self
        }
    }

    fn round_trip(text: &str) -> String {
        let info = parse(text).expect("module information parses");
        let mut out = String::new();
        format(&info, &mut out);
        out
    }

    #[test]
    fn parse_reads_every_record_kind() {
        let text = ModInfoText::new()
            .line(&["path", "example.com/cmd/server"])
            .line(&["mod", "example.com/server", "(devel)", ""])
            .line(&["dep", "golang.org/x/sys", "v0.1.0", "h1:abc="])
            .line(&["dep", "example.com/lib", "v1.0.0"])
            .line(&["=>", "../lib", "(devel)", ""])
            .line(&["build", "-ldflags=\"-s -w\""])
            .line(&["build", "CGO_ENABLED=0"])
            .line(&["build", "vcs.modified=true"])
            .0;
        let info = parse(&text).expect("module information parses");
        assert_eq!(info.path.as_deref(), Some("example.com/cmd/server"));
        let main = info.main.expect("main module");
        assert_eq!(main.path, "example.com/server");
        assert_eq!(main.version, "(devel)");
        assert_eq!(info.deps.len(), 2);
        assert_eq!(info.deps[0].sum, "h1:abc=");
        let replacement = info.deps[1].replace.as_ref().expect("replacement");
        assert_eq!(replacement.path, "../lib");
        assert_eq!(
            info.settings[0],
            BuildSetting {
                key: "-ldflags".into(),
                value: "-s -w".into()
            }
        );
        assert_eq!(info.settings[1].value, "0");
        assert_eq!(info.settings.len(), 3);
    }

    #[test]
    fn format_repeats_parsed_text() {
        let text = ModInfoText::new()
            .line(&["path", "example.com/hello"])
            .line(&["mod", "example.com/hello", "(devel)", ""])
            .line(&["dep", "example.com/lib", "v1.0.0", "h1:x="])
            .line(&["build", "-buildmode=exe"])
            .line(&["build", "-ldflags=\"-X main.v=1 -s\""])
            .line(&["build", "\"odd key\"=\"tab\\tvalue\""])
            .line(&["build", "CGO_CFLAGS="])
            .0;
        assert_eq!(round_trip(&text), text);
    }

    #[test]
    fn format_leaves_empty_line_after_replacement() {
        let text = ModInfoText::new()
            .line(&["dep", "example.com/lib", "v1.0.0"])
            .line(&["=>", "../lib", "(devel)", ""])
            .0;
        assert_eq!(round_trip(&text), format!("{text}\n"));
    }

    #[test]
    fn parse_skips_unknown_and_unterminated_lines() {
        let text = "future\tfield\npath\tp\nbuild\tGOOS=linux";
        let info = parse(text).expect("module information parses");
        assert_eq!(info.path.as_deref(), Some("p"));
        assert!(info.settings.is_empty());
    }

    #[test]
    fn parse_reports_line_and_offset() {
        let text = "path\tp\ndep\tonly-path\n";
        let err = parse(text).expect_err("one field is too few");
        assert_eq!(err.line, 2);
        assert_eq!(err.offset, 7);
        assert_eq!(err.kind, ModInfoErrorKind::ModuleFields { found: 1 });
    }

    #[test]
    fn parse_rejects_malformed_build_lines() {
        let cases = [
            ("build\t\n", ModInfoErrorKind::MissingEquals),
            ("build\t=v\n", ModInfoErrorKind::MissingKey),
            ("build\tnoequals\n", ModInfoErrorKind::MissingEquals),
            ("build\t\"open=v\n", ModInfoErrorKind::InvalidQuotedKey),
            (
                "build\t\"k\"v\n",
                ModInfoErrorKind::UnexpectedAfterQuotedKey { found: Some('v') },
            ),
            (
                "build\t\"k\"\n",
                ModInfoErrorKind::UnexpectedAfterQuotedKey { found: None },
            ),
            (
                "build\ta b=v\n",
                ModInfoErrorKind::UnquotedKey { key: "a b".into() },
            ),
            ("build\tk=\"open\n", ModInfoErrorKind::InvalidQuotedValue),
            (
                "build\tk=a b\n",
                ModInfoErrorKind::UnquotedValue {
                    value: "a b".into(),
                },
            ),
            ("=>\ta\tb\tc\n", ModInfoErrorKind::ReplacementWithoutModule),
            (
                "dep\ta\tb\n=>\ta\tb\n",
                ModInfoErrorKind::ReplacementFields { found: 2 },
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text).expect_err(text);
            assert_eq!(err.kind, expected, "parsing {text:?}");
        }
    }
}
