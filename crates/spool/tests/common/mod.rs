//! Test support: envelopes, bodies, and `MemFs`, an in-memory file system with a
//! crash model.
//!
//! The model (`docs/spool-format.md` §7): a file's contents become durable only at
//! its fsync; a directory's entries (create, rename, remove) only at that
//! directory's fsync. A crash freezes the state; the post-crash image keeps, for
//! every directory entry changed since the last directory fsync, either the old or
//! the new state (chosen at random, independently), and for every file written
//! since its last fsync, a random prefix of the unsynced bytes, sometimes with the
//! unsynced part replaced by garbage. A file rewritten in place since its last
//! fsync (a reused spool file) may come back with its old content, a prefix of the
//! new one, or garbage. Directories themselves are durable when created.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::{self, Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use postern_spool::{
    Envelope, EnvelopeRecipient, MailParams, QueueId, ReadFile, Receipt, ReceiptTls, SpoolFs,
    WriteFile,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub fn envelope(rcpts: usize) -> Envelope {
    Envelope {
        queue_id: QueueId::parse("000000000000000000").expect("valid id"),
        received_at: String::new(),
        reverse_path: "sender@example.org".into(),
        recipients: (0..rcpts)
            .map(|i| EnvelopeRecipient {
                address: format!("rcpt{i}@example.net"),
                notify: Some("FAILURE,DELAY".into()),
                orcpt: None,
            })
            .collect(),
        params: MailParams {
            size: Some(1234),
            body: Some("8BITMIME".into()),
            smtputf8: false,
            ret: Some("HDRS".into()),
            envid: None,
        },
        receipt: Receipt {
            listener: "mx".into(),
            peer: "192.0.2.7:41000".into(),
            helo: "client.example.org".into(),
            auth_user: None,
            tls: Some(ReceiptTls {
                version: "TLSv1.3".into(),
                cipher: "TLS_AES_128_GCM_SHA256".into(),
                group: Some("X25519".into()),
                sni: None,
            }),
            ..Default::default()
        },
        message_size: 0,
        added_headers: String::new(),
        hold: None,
        quarantine: None,
        require_tls: false,
        content: Vec::new(),
        bounce: None,
        message_id: None,
        subject: None,
    }
}

/// A deterministic message body of `len` bytes (printable, CRLF lines) for `seed`.
/// A plain xorshift: cheap enough for debug builds generating megabytes.
pub fn body(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        if out.len() % 78 == 76 {
            out.extend_from_slice(b"\r\n");
        } else {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.push(b' ' + (x % 95) as u8);
        }
    }
    out.truncate(len);
    out
}

#[derive(Clone, Default)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Clone, Default)]
struct Dir {
    live: BTreeMap<OsString, usize>,
    durable: BTreeMap<OsString, usize>,
}

#[derive(Clone, Default)]
struct State {
    inodes: Vec<Inode>,
    dirs: BTreeMap<PathBuf, Dir>,
}

#[derive(Default)]
struct Shared {
    state: State,
    /// Mutating operations so far.
    ops: u64,
    crash_at: Option<u64>,
    /// The state at the moment of the crash.
    crashed: Option<State>,
}

/// In-memory file system with a crash model. Cheap to clone (shared state).
#[derive(Clone, Default)]
pub struct MemFs {
    shared: Arc<Mutex<Shared>>,
}

fn crashed_error() -> io::Error {
    io::Error::from_raw_os_error(libc::EIO)
}

fn split(path: &Path) -> (PathBuf, OsString) {
    let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = path.file_name().map(ToOwned::to_owned).unwrap_or_default();
    (parent, name)
}

impl MemFs {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Count one mutating operation; crash if it is the chosen one.
    fn step(sh: &mut Shared) -> io::Result<()> {
        if sh.crashed.is_some() {
            return Err(crashed_error());
        }
        sh.ops += 1;
        if sh.crash_at == Some(sh.ops) {
            sh.crashed = Some(sh.state.clone());
            return Err(crashed_error());
        }
        Ok(())
    }

    /// Mutating operations so far.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Crash at the `n`th mutating operation from now (1 = the next one): that
    /// operation and every later one fail, and the state just before it is kept.
    pub fn crash_after(&self, n: u64) {
        let mut sh = self.lock();
        sh.crash_at = Some(sh.ops + n.max(1));
    }

    /// Crash now, if not crashed yet.
    pub fn crash_now(&self) {
        let mut sh = self.lock();
        if sh.crashed.is_none() {
            sh.crashed = Some(sh.state.clone());
        }
    }

    pub fn has_crashed(&self) -> bool {
        self.lock().crashed.is_some()
    }

    /// The file system a reboot after the crash would find, with the undecided
    /// parts chosen by `seed`. Panics if there was no crash.
    pub fn after_crash(&self, seed: u64) -> MemFs {
        let sh = self.lock();
        let state = sh.crashed.as_ref().expect("crash_now or crash_after first");
        let mut rng = StdRng::seed_from_u64(seed);
        let mut new = State::default();
        let mut map: BTreeMap<usize, usize> = BTreeMap::new();
        for (path, dir) in &state.dirs {
            let names: BTreeSet<&OsString> = dir.live.keys().chain(dir.durable.keys()).collect();
            let mut entries = BTreeMap::new();
            for name in names {
                let live = dir.live.get(name);
                let durable = dir.durable.get(name);
                let kept = if live == durable || rng.random_bool(0.5) {
                    durable
                } else {
                    live
                };
                if let Some(&ino) = kept {
                    let new_ino = *map.entry(ino).or_insert_with(|| {
                        let old = &state.inodes[ino];
                        let content = crash_content(old, &mut rng);
                        new.inodes.push(Inode {
                            live: content.clone(),
                            durable: content,
                        });
                        new.inodes.len() - 1
                    });
                    entries.insert(name.clone(), new_ino);
                }
            }
            new.dirs.insert(
                path.clone(),
                Dir {
                    live: entries.clone(),
                    durable: entries,
                },
            );
        }
        MemFs {
            shared: Arc::new(Mutex::new(Shared {
                state: new,
                ..Shared::default()
            })),
        }
    }

    /// An independent copy of the current state (no crash armed).
    pub fn deep_clone(&self) -> MemFs {
        let state = self.lock().state.clone();
        MemFs {
            shared: Arc::new(Mutex::new(Shared {
                state,
                ..Shared::default()
            })),
        }
    }

    /// Live contents of a file (test inspection).
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let sh = self.lock();
        let (parent, name) = split(path);
        let ino = *sh.state.dirs.get(&parent)?.live.get(&name)?;
        Some(sh.state.inodes[ino].live.clone())
    }

    /// Replace the live (and durable) contents of an existing file.
    pub fn set_contents(&self, path: &Path, data: Vec<u8>) {
        let mut sh = self.lock();
        let (parent, name) = split(path);
        let ino = *sh.state.dirs[&parent].live.get(&name).expect("file exists");
        sh.state.inodes[ino] = Inode {
            live: data.clone(),
            durable: data,
        };
    }

    /// Names in a directory (live view).
    pub fn names(&self, dir: &Path) -> Vec<String> {
        let sh = self.lock();
        sh.state.dirs.get(dir).map_or_else(Vec::new, |d| {
            d.live
                .keys()
                .map(|n| n.to_string_lossy().into_owned())
                .collect()
        })
    }
}

/// What a crash leaves of a file: the synced bytes, then a random prefix of the
/// unsynced ones, sometimes garbage instead.
fn crash_content(inode: &Inode, rng: &mut StdRng) -> Vec<u8> {
    let synced = inode.durable.len();
    if inode.live == inode.durable {
        return inode.durable.clone();
    }
    if !inode.live.starts_with(&inode.durable) {
        // Rewritten in place (or cut) since the last fsync: anything goes.
        return match rng.random_range(0..3) {
            0 => inode.durable.clone(),
            1 => inode.live[..rng.random_range(0..=inode.live.len())].to_vec(),
            _ => {
                let len = rng.random_range(0..=inode.live.len().max(synced));
                (0..len).map(|_| rng.random()).collect()
            }
        };
    }
    let len = rng.random_range(synced..=inode.live.len());
    let mut out = inode.live[..len].to_vec();
    if rng.random_bool(0.3) {
        for b in &mut out[synced..] {
            *b = rng.random();
        }
    }
    out
}

struct MemWriteFile {
    fs: MemFs,
    ino: usize,
    /// Where the next write goes (files are written from 0, sequentially).
    pos: usize,
}

impl Write for MemWriteFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut sh = self.fs.lock();
        MemFs::step(&mut sh)?;
        let live = &mut sh.state.inodes[self.ino].live;
        let end = self.pos + buf.len();
        if live.len() < end {
            live.resize(end, 0);
        }
        live[self.pos..end].copy_from_slice(buf);
        self.pos = end;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl WriteFile for MemWriteFile {
    fn sync(&mut self) -> io::Result<()> {
        let mut sh = self.fs.lock();
        MemFs::step(&mut sh)?;
        let inode = &mut sh.state.inodes[self.ino];
        inode.durable = inode.live.clone();
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let mut sh = self.fs.lock();
        MemFs::step(&mut sh)?;
        let len = usize::try_from(len).map_err(io::Error::other)?;
        sh.state.inodes[self.ino].live.resize(len, 0);
        Ok(())
    }
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

impl SpoolFs for MemFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut sh = self.lock();
        if sh.crashed.is_some() {
            return Err(crashed_error());
        }
        for p in path.ancestors() {
            if !p.as_os_str().is_empty() {
                sh.state.dirs.entry(p.to_path_buf()).or_default();
            }
        }
        Ok(())
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let mut sh = self.lock();
        MemFs::step(&mut sh)?;
        let (parent, name) = split(path);
        if !sh.state.dirs.contains_key(&parent) {
            return Err(not_found());
        }
        if sh.state.dirs[&parent].live.contains_key(&name) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        sh.state.inodes.push(Inode::default());
        let ino = sh.state.inodes.len() - 1;
        sh.state
            .dirs
            .get_mut(&parent)
            .expect("checked")
            .live
            .insert(name, ino);
        Ok(Box::new(MemWriteFile {
            fs: self.clone(),
            ino,
            pos: 0,
        }))
    }

    fn open_rewrite(&self, path: &Path) -> io::Result<Option<Box<dyn WriteFile>>> {
        let sh = self.lock();
        if sh.crashed.is_some() {
            return Err(crashed_error());
        }
        let (parent, name) = split(path);
        let ino = *sh
            .state
            .dirs
            .get(&parent)
            .and_then(|d| d.live.get(&name))
            .ok_or_else(not_found)?;
        Ok(Some(Box::new(MemWriteFile {
            fs: self.clone(),
            ino,
            pos: 0,
        })))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn ReadFile>> {
        let sh = self.lock();
        let (parent, name) = split(path);
        let ino = *sh
            .state
            .dirs
            .get(&parent)
            .and_then(|d| d.live.get(&name))
            .ok_or_else(not_found)?;
        Ok(Box::new(Cursor::new(sh.state.inodes[ino].live.clone())))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut sh = self.lock();
        MemFs::step(&mut sh)?;
        let (fp, fname) = split(from);
        let (tp, tname) = split(to);
        if !sh.state.dirs.contains_key(&tp) {
            return Err(not_found());
        }
        let ino = sh
            .state
            .dirs
            .get_mut(&fp)
            .and_then(|d| d.live.remove(&fname))
            .ok_or_else(not_found)?;
        sh.state
            .dirs
            .get_mut(&tp)
            .expect("checked")
            .live
            .insert(tname, ino);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut sh = self.lock();
        MemFs::step(&mut sh)?;
        let (parent, name) = split(path);
        sh.state
            .dirs
            .get_mut(&parent)
            .and_then(|d| d.live.remove(&name))
            .map(|_| ())
            .ok_or_else(not_found)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let sh = self.lock();
        if sh.crashed.is_some() {
            return Err(crashed_error());
        }
        let dir = sh.state.dirs.get(path).ok_or_else(not_found)?;
        Ok(dir.live.keys().cloned().collect())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut sh = self.lock();
        MemFs::step(&mut sh)?;
        if let Some(dir) = sh.state.dirs.get_mut(path) {
            dir.durable = dir.live.clone();
        }
        Ok(())
    }
}
