//! Which package a printed Go function name belongs to.
//!
//! Crash signatures keep the frames of the program and drop those of the
//! runtime; this module draws that line from the name alone, as printed in a
//! traceback. It does not demangle or shorten names: closures, generics and
//! method receivers stay as printed.

use serde::{Deserialize, Serialize};

/// The kind of code a function belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunctionClass {
    /// Package `main`.
    Main,
    /// The runtime: package `runtime`, its internal packages, and `panic`,
    /// which is how tracebacks print `runtime.gopanic`.
    Runtime,
    /// Any other standard library package: the first element of its import
    /// path has no dot (`net/http`, `internal/poll`, `vendor/golang.org/x/net`).
    Standard,
    /// A package outside the standard library (`github.com/x/y`).
    ThirdParty,
    /// Code the compiler or linker generates: `type:.eq.T`, `go:buildid`.
    Generated,
    /// C code reached through cgo, printed by the cgo traceback hooks.
    NonGo,
}

/// Returns the import path of the package that defines a printed function,
/// with `%2e` escapes of the last path element decoded. `None` for names
/// without a package, such as `panic`.
///
/// The linker escapes dots in the last element of an import path, so the
/// package ends at the first dot after the last slash; any later dot
/// separates receivers, methods and closures.
pub fn package_path(function: &str) -> Option<String> {
    let name_start = function.rfind('/').map_or(0, |slash| slash + 1);
    // A slash inside a generic type argument list (`pkg.F[...]` prints no
    // paths, but `go.shape` names may) must not move the package end.
    let name_start = match function.find('[') {
        Some(bracket) if bracket < name_start => {
            function[..bracket].rfind('/').map_or(0, |slash| slash + 1)
        }
        _ => name_start,
    };
    let dot = function.get(name_start..)?.find('.')?;
    let end = name_start.checked_add(dot)?;
    let path = function.get(..end)?;
    if path.is_empty() {
        return None;
    }
    Some(unescape_path(path))
}

/// Tells which kind of code a printed function name belongs to.
pub fn classify_function(function: &str) -> FunctionClass {
    if function == "panic" {
        return FunctionClass::Runtime;
    }
    if function == "non-Go function" {
        return FunctionClass::NonGo;
    }
    if function.starts_with("type:")
        || function.starts_with("type..")
        || function.starts_with("go:")
    {
        return FunctionClass::Generated;
    }
    let Some(path) = package_path(function) else {
        return FunctionClass::NonGo;
    };
    classify_package(&path)
}

/// Tells which kind of code a package import path belongs to.
pub fn classify_package(path: &str) -> FunctionClass {
    if path == "main" {
        return FunctionClass::Main;
    }
    if path == "runtime"
        || path.starts_with("runtime/internal/")
        || path.starts_with("internal/runtime/")
    {
        return FunctionClass::Runtime;
    }
    let first_element = path.split('/').next().unwrap_or(path);
    if first_element.contains('.') {
        FunctionClass::ThirdParty
    } else {
        FunctionClass::Standard
    }
}

/// Decodes the `%xx` escapes the linker writes into import paths.
fn unescape_path(path: &str) -> String {
    if !path.contains('%') {
        return path.to_string();
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let escaped = match (byte, bytes.get(index + 1), bytes.get(index + 2)) {
            (b'%', Some(&high), Some(&low)) => hex_digit(high).zip(hex_digit(low)),
            _ => None,
        };
        match escaped {
            Some((high, low)) => {
                out.push(high << 4 | low);
                index += 3;
            }
            None => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|digit| u8::try_from(digit).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_of_plain_functions() {
        assert_eq!(package_path("main.main").as_deref(), Some("main"));
        assert_eq!(package_path("main.main.func1").as_deref(), Some("main"));
        assert_eq!(package_path("runtime.gopark").as_deref(), Some("runtime"));
        assert_eq!(package_path("panic"), None);
    }

    #[test]
    fn package_of_methods_and_generics() {
        assert_eq!(
            package_path("main.(*server).serve").as_deref(),
            Some("main")
        );
        assert_eq!(
            package_path("main.(*Queue[...]).Wait").as_deref(),
            Some("main")
        );
        assert_eq!(
            package_path("internal/poll.(*FD).Accept").as_deref(),
            Some("internal/poll")
        );
        assert_eq!(
            package_path("github.com/x/y.(*T).M-fm").as_deref(),
            Some("github.com/x/y")
        );
    }

    #[test]
    fn package_path_unescapes_dots() {
        assert_eq!(
            package_path("gopkg.in/yaml%2ev2.(*parser).parse").as_deref(),
            Some("gopkg.in/yaml.v2")
        );
        assert_eq!(unescape_path("a%2"), "a%2");
        assert_eq!(unescape_path("a%zz"), "a%zz");
    }

    #[test]
    fn classes_of_functions() {
        assert_eq!(
            classify_function("main.(*Handler).Name"),
            FunctionClass::Main
        );
        assert_eq!(classify_function("panic"), FunctionClass::Runtime);
        assert_eq!(classify_function("runtime.goexit"), FunctionClass::Runtime);
        assert_eq!(
            classify_function("internal/runtime/maps.fatal"),
            FunctionClass::Runtime
        );
        assert_eq!(
            classify_function("runtime/internal/syscall.Syscall6"),
            FunctionClass::Runtime
        );
        assert_eq!(
            classify_function("runtime/pprof.Do"),
            FunctionClass::Standard
        );
        assert_eq!(
            classify_function("sync.(*Mutex).Lock"),
            FunctionClass::Standard
        );
        assert_eq!(
            classify_function("vendor/golang.org/x/net/http2.(*Framer).ReadFrame"),
            FunctionClass::Standard
        );
        assert_eq!(
            classify_function("github.com/x/y.Handler.ServeHTTP"),
            FunctionClass::ThirdParty
        );
        assert_eq!(
            classify_function("type:.eq.[2]interface {}"),
            FunctionClass::Generated
        );
        assert_eq!(classify_function("non-Go function"), FunctionClass::NonGo);
        assert_eq!(classify_function("crash_in_c"), FunctionClass::NonGo);
    }
}
