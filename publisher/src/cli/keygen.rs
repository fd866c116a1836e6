//! `publisher keygen --out DIR`: writes a new ed25519 signing key pair for signed pointers:
//! `DIR/signing-key.pem` (PKCS#8 PEM, created with mode 0600, never overwritten) and
//! `DIR/public-key.txt` (`<key id>:<base64 public key>`, the line to add to the worker's
//! `FLAGS_PUBLIC_KEYS`). The private key is never printed.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use flags_store::signing::SigningKey;

/// The private key's file name in `--out`.
pub const PRIVATE_KEY_FILE: &str = "signing-key.pem";
/// The public key line's file name in `--out`.
pub const PUBLIC_KEY_FILE: &str = "public-key.txt";

/// Arguments of `keygen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write `signing-key.pem` and `public-key.txt` into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Exit 0 with the public key line on stdout; 1 when a file exists already or cannot be written.
pub fn run(args: Args) -> ExitCode {
    match write(&args) {
        Ok(key) => {
            println!("{}", key.public_line());
            eprintln!(
                "wrote {} (keep it secret; --signing-key / FLAGS_SIGNING_KEY_FILE) and {}; \
                 add the line above to the worker's FLAGS_PUBLIC_KEYS",
                args.out.join(PRIVATE_KEY_FILE).display(),
                args.out.join(PUBLIC_KEY_FILE).display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: keygen: {error}");
            ExitCode::FAILURE
        }
    }
}

fn write(args: &Args) -> Result<SigningKey, String> {
    let key = SigningKey::generate()?;
    let pem = key.to_pem()?;
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let private = args.out.join(PRIVATE_KEY_FILE);
    let mut options = std::fs::OpenOptions::new();
    // `create_new`: never replace a key (its signatures would stop verifying at the edge).
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&private)
        .map_err(|e| format!("{}: {e}", private.display()))?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", private.display()))?;
    let public = args.out.join(PUBLIC_KEY_FILE);
    std::fs::write(&public, format!("{}\n", key.public_line()))
        .map_err(|e| format!("{}: {e}", public.display()))?;
    Ok(key)
}
