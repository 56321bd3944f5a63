//! What the orchestrator and a local cluster's stage supervisor (see `supervisor.rs`) say
//! to each other: requests framed by their length on the supervisor's standard input,
//! reports a line each on its standard output. It uses only the standard library, so
//! `respawn-supervise` compiles it on its own too.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// One stage to start.
#[derive(Clone, Debug, PartialEq)]
pub struct Launch {
    pub token: u64,
    pub cwd: OsString,
    pub log: OsString,
    pub line: OsString,
    /// Variables set in the stage's environment, over the supervisor's own.
    pub set: Vec<(OsString, OsString)>,
    /// Variables removed from it.
    pub remove: Vec<OsString>,
}

/// What the orchestrator asks of the supervisor.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Launch(Launch),
    Kill { token: u64 },
    Signal { signal: i32 },
}

/// What the supervisor tells the orchestrator, one line each.
#[derive(Clone, Debug, PartialEq)]
pub enum Report {
    /// The stage's keeper runs as `pid`, which is also its process group.
    Started {
        token: u64,
        pid: i32,
    },
    Exited {
        token: u64,
        code: i32,
    },
}

impl Request {
    /// A frame: its length (4 bytes, little-endian), then its fields, each ended by a NUL
    /// byte (no path, variable or command line can hold one).
    pub fn encode(&self) -> Vec<u8> {
        let mut fields: Vec<&[u8]> = Vec::new();
        let number;
        let mut pairs = Vec::new();
        match self {
            Request::Launch(launch) => {
                number = launch.token.to_string();
                fields.extend([b"launch".as_slice(), number.as_bytes()]);
                fields.extend([&launch.cwd, &launch.log, &launch.line].map(|f| f.as_bytes()));
                for (key, value) in &launch.set {
                    let mut pair = b"=".to_vec();
                    pair.extend_from_slice(key.as_bytes());
                    pair.push(b'=');
                    pair.extend_from_slice(value.as_bytes());
                    pairs.push(pair);
                }
                for key in &launch.remove {
                    pairs.push([b"-".as_slice(), key.as_bytes()].concat());
                }
                fields.extend(pairs.iter().map(Vec::as_slice));
            }
            Request::Kill { token } => {
                number = token.to_string();
                fields.extend([b"kill".as_slice(), number.as_bytes()]);
            }
            Request::Signal { signal } => {
                number = signal.to_string();
                fields.extend([b"signal".as_slice(), number.as_bytes()]);
            }
        }
        let body: Vec<u8> = fields
            .iter()
            .flat_map(|f| f.iter().chain(b"\0"))
            .copied()
            .collect();
        let mut frame = (body.len() as u32).to_le_bytes().to_vec();
        frame.extend(body);
        frame
    }

    /// The request of one frame's body; `None` when it is not one.
    pub fn decode(body: &[u8]) -> Option<Request> {
        let mut fields = body.strip_suffix(b"\0")?.split(|b| *b == 0);
        let kind = fields.next()?;
        let number = std::str::from_utf8(fields.next()?).ok()?;
        match kind {
            b"kill" => Some(Request::Kill {
                token: number.parse().ok()?,
            }),
            b"signal" => Some(Request::Signal {
                signal: number.parse().ok()?,
            }),
            b"launch" => {
                let mut text = || Some(OsString::from_vec(fields.next()?.to_vec()));
                let (cwd, log, line) = (text()?, text()?, text()?);
                let mut launch = Launch {
                    token: number.parse().ok()?,
                    cwd,
                    log,
                    line,
                    set: Vec::new(),
                    remove: Vec::new(),
                };
                for field in fields {
                    match field.split_first()? {
                        (b'=', pair) => {
                            let at = pair.iter().position(|b| *b == b'=')?;
                            launch.set.push((
                                OsStr::from_bytes(&pair[..at]).to_owned(),
                                OsStr::from_bytes(&pair[at + 1..]).to_owned(),
                            ));
                        }
                        (b'-', key) => launch.remove.push(OsStr::from_bytes(key).to_owned()),
                        _ => return None,
                    }
                }
                Some(Request::Launch(launch))
            }
            _ => None,
        }
    }
}

/// The supervisor's side of the frames: bytes go in as they arrive on the pipe, whole
/// frames' bodies come out in order (a frame split across reads waits for its rest).
#[derive(Default)]
pub struct Frames {
    pending: Vec<u8>,
}

impl Frames {
    pub fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// The body of the next whole frame, if one has arrived.
    pub fn next_body(&mut self) -> Option<Vec<u8>> {
        let length = u32::from_le_bytes(self.pending.get(..4)?.try_into().ok()?) as usize;
        if self.pending.len() < 4 + length {
            return None;
        }
        Some(self.pending.drain(..4 + length).skip(4).collect())
    }
}

impl Report {
    pub fn encode(&self) -> String {
        match self {
            Report::Started { token, pid } => format!("started {token} {pid}\n"),
            Report::Exited { token, code } => format!("exited {token} {code}\n"),
        }
    }

    pub fn decode(line: &str) -> Option<Report> {
        let mut words = line.split_whitespace();
        let (kind, token, number) = (words.next()?, words.next()?, words.next()?);
        let (token, number) = (token.parse().ok()?, number.parse().ok()?);
        match kind {
            "started" => Some(Report::Started { token, pid: number }),
            "exited" => Some(Report::Exited {
                token,
                code: number,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_come_back_as_they_were_sent_whatever_bytes_their_fields_hold() {
        let launch = Launch {
            token: 7,
            cwd: OsString::from_vec(b"/tmp/a b/\xff".to_vec()),
            log: "/tmp/log".into(),
            line: "echo 'a=b' -c; printf '\\n'".into(),
            set: vec![("A".into(), "x=y".into()), ("EMPTY".into(), "".into())],
            remove: vec!["AWS_SECRET_ACCESS_KEY".into()],
        };
        for request in [
            Request::Launch(launch.clone()),
            Request::Launch(Launch {
                line: "".into(),
                set: vec![],
                remove: vec![],
                ..launch
            }),
            Request::Kill { token: 3 },
            Request::Signal { signal: 15 },
        ] {
            let frame = request.encode();
            let length = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
            assert_eq!(length, frame.len() - 4);
            assert_eq!(Request::decode(&frame[4..]), Some(request));
        }
    }

    #[test]
    fn frames_split_anywhere_across_reads_come_out_whole_and_in_order() {
        let requests = [
            Request::Kill { token: 3 },
            Request::Signal { signal: 15 },
            Request::Kill { token: 9 },
        ];
        let bytes: Vec<u8> = requests.iter().flat_map(Request::encode).collect();
        for piece in 1..bytes.len() {
            let mut frames = Frames::default();
            let mut seen = Vec::new();
            for chunk in bytes.chunks(piece) {
                frames.push(chunk);
                while let Some(body) = frames.next_body() {
                    seen.push(Request::decode(&body).unwrap());
                }
            }
            assert_eq!(seen, requests, "read {piece} bytes at a time");
        }
    }

    #[test]
    fn a_malformed_frame_is_no_request() {
        for body in [
            &b""[..],
            b"launch\0",
            b"launch\x001\0/\0/log\0",
            b"kill\0x\0",
            b"launch\x001\0/\0/log\0true\0?what\0",
            b"reboot\x001\0",
            b"kill\x001",
        ] {
            assert_eq!(Request::decode(body), None, "{body:?}");
        }
    }

    #[test]
    fn reports_are_read_back_and_other_lines_are_not() {
        for report in [
            Report::Started {
                token: 1,
                pid: 4242,
            },
            Report::Exited {
                token: u64::MAX,
                code: 137,
            },
        ] {
            assert_eq!(Report::decode(&report.encode()), Some(report));
        }
        assert_eq!(Report::decode("exited 1"), None);
        assert_eq!(Report::decode("left 1 2"), None);
    }
}
