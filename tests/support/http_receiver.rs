//! A real HTTP/1.1 server on loopback that receives webhook alerts: it keeps each JSON
//! body it read and answers as its script says (an error status, a hang past the sender's
//! timeout, a slow answer), then 200 to everything.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Status(u16),
    /// Says nothing for this long, then closes the connection.
    Hang(Duration),
    /// Waits this long, then answers 200.
    Slow(Duration),
}

#[derive(Clone, Debug)]
pub struct Received {
    pub body: serde_json::Value,
    /// The status answered (0 for a hang).
    pub answered: u16,
}

pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub fn start(script: Vec<Answer>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.into_iter()));
        let kept = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (kept, script) = (kept.clone(), script.clone());
                std::thread::spawn(move || serve(stream, &kept, &script));
            }
        });
        Receiver { url, received }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The bodies answered 2xx, which the sender counts as delivered.
    pub fn delivered(&self) -> Vec<serde_json::Value> {
        (self.received().into_iter())
            .filter(|r| (200..300).contains(&r.answered))
            .map(|r| r.body)
            .collect()
    }
}

type Script = Mutex<std::vec::IntoIter<Answer>>;

fn serve(stream: TcpStream, kept: &Mutex<Vec<Received>>, script: &Script) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let answer = script.lock().unwrap().next().unwrap_or(Answer::Status(200));
    let status = match answer {
        Answer::Status(status) => status,
        Answer::Hang(time) => {
            kept.lock().unwrap().push(Received { body, answered: 0 });
            std::thread::sleep(time);
            return;
        }
        Answer::Slow(time) => {
            std::thread::sleep(time);
            200
        }
    };
    kept.lock().unwrap().push(Received {
        body,
        answered: status,
    });
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
}
