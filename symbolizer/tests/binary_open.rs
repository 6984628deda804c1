//! Opening a binary that is not a regular file fails at once with a clear
//! error: a FIFO would block the open and a device would never end.

use std::process::Command;

use symbolizer::binary::{Binary, BinaryError};

#[test]
fn directory_is_not_a_regular_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let err = Binary::open(dir.path()).expect_err("a directory is no binary");
    assert!(matches!(err, BinaryError::NotRegularFile { .. }), "{err}");
    assert!(err.to_string().ends_with("not a regular file"), "{err}");
}

#[test]
fn device_is_not_a_regular_file() {
    let err = Binary::open("/dev/zero").expect_err("a device is no binary");
    assert!(matches!(err, BinaryError::NotRegularFile { .. }), "{err}");
}

#[test]
fn fifo_is_rejected_without_blocking() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("fifo");
    let status = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo failed");
    let err = Binary::open(&fifo).expect_err("a FIFO is no binary");
    assert!(matches!(err, BinaryError::NotRegularFile { .. }), "{err}");
}
