//! `keycard`: a native client of a Keycard hotel. It checks in with the device authorization
//! grant (RFC 8628: a code to approve in a browser where the guest is already checked in), keeps
//! its tokens bound to a DPoP key of its own (RFC 9449), and visits the front desk with its
//! refresh token in a request body when its key card expires (RFC 6749, section 6).
//!
//! ```text
//! keycard login [URL]   check in (URL: $KEYCARD_URL, else http://127.0.0.1:3000)
//! keycard whoami        who the key card belongs to, and its booking
//! keycard gym           open an amenity (checked with the hotel's public keys only)
//! keycard refresh       visit the front desk now
//! keycard logout        check out: end the booking, forget the tokens
//! ```

mod hotel;
mod tokens;

use std::process::ExitCode;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use clap::{Parser, Subcommand};
use keycard_dpop::ProofKey;

use hotel::{Hotel, Tokens};
use tokens::Stay;

/// Check in to a Keycard hotel from the terminal.
#[derive(Parser)]
#[command(name = "keycard", version, about)]
struct Cli {
    /// Print every exchange with the hotel, the way the browser's wire panel does (never a
    /// token's value).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check in: shows a code to approve in a browser where you are checked in.
    Login {
        /// The hotel's public URL [default: $KEYCARD_URL, else http://127.0.0.1:3000].
        url: Option<String>,
    },
    /// Who the key card belongs to, and its booking.
    Whoami,
    /// Open the gym: an amenity, which checks the key card with the hotel's public keys only.
    Gym,
    /// Visit the front desk now: a new key card and a new refresh token.
    Refresh,
    /// Check out: end this booking at the hotel and forget the tokens.
    Logout,
}

/// Why a command failed, in words for the person at the terminal.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("not checked in: run `keycard login` first")]
    NotCheckedIn,
    #[error("the booking is over (checked out from the bookings page, expired, or cancelled because an old refresh token was used again): run `keycard login`")]
    BookingEnded,
    #[error("you denied the request in the browser")]
    Denied,
    #[error("the code expired before it was approved: run `keycard login` again")]
    Expired,
    #[error("the hotel refused: {0}")]
    Refused(String),
    #[error("cannot reach the hotel: {0}")]
    Http(String),
    #[error("{0:?} is not a hotel URL: {1}")]
    Url(String, String),
    #[error("no folder for the tokens: set KEYCARD_CLI_DIR or HOME")]
    NoConfigFolder,
    #[error("{0}: {1}")]
    File(String, String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keycard: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    let verbose = cli.verbose;
    match cli.command {
        Command::Login { url } => login(url, verbose),
        Command::Whoami => {
            let me = with_key_card(verbose, |hotel, card| {
                hotel.call(http::Method::POST, "/api/me", card)
            })?;
            let user = &me["user"];
            let booking = &me["session"];
            println!("{} (guest {})", text(&user["username"]), text(&user["id"]));
            println!(
                "booking {}, generation {}",
                text(&booking["session_id"]),
                booking["generation"]
            );
            Ok(())
        }
        Command::Gym => {
            let pass = with_key_card(verbose, |hotel, card| {
                hotel.call(http::Method::GET, "/amenities/gym", card)
            })?;
            println!("{}", text(&pass["message"]));
            println!("(checked with {})", text(&pass["verified_with"]));
            Ok(())
        }
        Command::Refresh => {
            let stay = tokens::load()?.ok_or(CliError::NotCheckedIn)?;
            let hotel = hotel_of(&stay, verbose)?;
            let stay = visit_front_desk(&hotel, stay)?;
            println!(
                "new key card ({}), valid for {} s",
                stay.token_type,
                stay.expires_at - hotel::now()
            );
            Ok(())
        }
        Command::Logout => {
            let ended = with_key_card(verbose, |hotel, card| {
                hotel.call(http::Method::POST, "/api/auth/logout", card)
            });
            tokens::forget()?;
            match ended {
                Ok(_) | Err(CliError::BookingEnded | CliError::NotCheckedIn) => {
                    println!("checked out");
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
    }
}

fn login(url: Option<String>, verbose: bool) -> Result<(), CliError> {
    let url = url
        .or_else(|| std::env::var("KEYCARD_URL").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "http://127.0.0.1:3000".into());
    let key = ProofKey::generate();
    let dpop_key = URL_SAFE_NO_PAD.encode(key.secret());
    let hotel = Hotel::new(&url, key, verbose)?;
    let tokens = hotel.check_in(|details| {
        let page = details
            .verification_uri_complete()
            .map(|u| u.secret().to_owned())
            .unwrap_or_else(|| details.verification_uri().to_string());
        println!("To check in, open this page in a browser where you are checked in:");
        println!();
        println!("    {page}");
        println!();
        println!("and check that it shows the code {}.", details.user_code().secret());
        println!(
            "Waiting for your approval (the code expires in {} minutes)…",
            details.expires_in().as_secs() / 60
        );
    })?;
    let stay = stay_of(&hotel, tokens, dpop_key);
    tokens::save(&stay)?;
    println!(
        "checked in: key card ({}) and refresh token kept in {}",
        stay.token_type,
        tokens::path()?.display()
    );
    Ok(())
}

fn stay_of(hotel: &Hotel, t: Tokens, dpop_key: String) -> Stay {
    Stay {
        hotel: hotel.origin().to_owned(),
        client_id: hotel::CLIENT_ID.to_owned(),
        access_token: t.access_token,
        token_type: t.token_type,
        expires_at: t.expires_at,
        refresh_token: t.refresh_token,
        dpop_key,
    }
}

fn hotel_of(stay: &Stay, verbose: bool) -> Result<Hotel, CliError> {
    let secret = URL_SAFE_NO_PAD.decode(&stay.dpop_key).ok().and_then(|s| s.try_into().ok());
    let secret: [u8; 32] = secret.ok_or_else(|| {
        let file = tokens::path().map(|p| p.display().to_string()).unwrap_or_default();
        CliError::File(file, "its DPoP key is damaged: run `keycard login`".into())
    })?;
    Hotel::new(&stay.hotel, ProofKey::from_secret(secret), verbose)
}

/// The front desk: new tokens, saved before anything else happens (the old refresh token is
/// spent the moment the hotel answers). A booking that is over forgets the file.
fn visit_front_desk(hotel: &Hotel, stay: Stay) -> Result<Stay, CliError> {
    match hotel.refresh(&stay.refresh_token) {
        Ok(tokens) => {
            let renewed = stay_of(hotel, tokens, stay.dpop_key);
            tokens::save(&renewed)?;
            Ok(renewed)
        }
        Err(CliError::BookingEnded) => {
            tokens::forget()?;
            Err(CliError::BookingEnded)
        }
        Err(e) => Err(e),
    }
}

/// Runs `call` with the key card, visiting the front desk first if it has expired, or once
/// when the door says it has (the article's step 3, from a terminal).
fn with_key_card(
    verbose: bool,
    call: impl Fn(&Hotel, (&str, &str)) -> Result<(http::StatusCode, serde_json::Value), CliError>,
) -> Result<serde_json::Value, CliError> {
    let mut stay = tokens::load()?.ok_or(CliError::NotCheckedIn)?;
    let hotel = hotel_of(&stay, verbose)?;
    if stay.expires_at <= hotel::now() + 5 {
        stay = visit_front_desk(&hotel, stay)?;
    }
    let mut answer = call(&hotel, (&stay.token_type, &stay.access_token))?;
    if answer.0 == http::StatusCode::UNAUTHORIZED && answer.1["error"] == "key_card_expired" {
        stay = visit_front_desk(&hotel, stay)?;
        answer = call(&hotel, (&stay.token_type, &stay.access_token))?;
    }
    match answer {
        (status, body) if status.is_success() => Ok(body),
        (http::StatusCode::UNAUTHORIZED, body)
            if matches!(body["error"].as_str(), Some("session_revoked" | "session_expired")) =>
        {
            tokens::forget()?;
            Err(CliError::BookingEnded)
        }
        (status, body) => Err(CliError::Refused(format!(
            "{status}: {}",
            body["message"].as_str().or(body["error"].as_str()).unwrap_or("no reason given")
        ))),
    }
}

/// A JSON string as text (`?` when it is not one).
fn text(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or("?")
}
