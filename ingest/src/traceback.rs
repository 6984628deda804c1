//! Parses the text the Go runtime prints when a program crashes.
