//! The console: pages a person reads instead of JSON, on the same server and behind the same
//! keys. Runs over time, the bill per job and month, tables with their versions, schema diffs,
//! partitions and checks, pipelines as graphs coloured by their last run, and a run's report.
//!
//! Pages are rendered on the server (maud, which escapes every value it is given) and charts
//! are inline SVG drawn here: no script runs in the browser, nothing is fetched from elsewhere,
//! and it works offline. Every chart has a title and a description, status is written as
//! well as coloured, and the data behind a chart is also in a table, so keyboard and screen
//! reader users get everything. A key is entered once in a login form and kept in an
//! HTTP-only, same-site cookie; it sees the tables and runs the key may read, as the API does.

mod charts;
mod pages;

use std::sync::Arc;

use axum::extract::{Form, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Router};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::Server;
use super::keys::Key;
use super::log::KeyName;

/// The cookie that holds the key's secret in the browser.
const COOKIE: &str = "etl_key";

pub fn router(server: Arc<Server>) -> Router<Arc<Server>> {
    let pages = Router::new()
        .route("/", get(pages::runs))
        .route("/bill", get(pages::bill))
        .route("/tables", get(pages::tables))
        .route("/tables/{name}", get(pages::table))
        .route("/pipelines", get(pages::pipelines))
        .route("/runs/{id}", get(pages::run))
        .route_layer(middleware::from_fn_with_state(server, require_login));
    Router::new()
        .merge(pages)
        .route("/login", get(login_form).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/console.css", get(stylesheet))
}

fn cookie_secret(request: &Request) -> Option<String> {
    let cookies = request.headers().get_all(header::COOKIE);
    cookies
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// A valid key from the cookie, else the login page.
async fn require_login(State(server): State<Arc<Server>>, mut request: Request, next: Next) -> Response {
    let key = cookie_secret(&request).and_then(|secret| server.keys.verify(&secret).ok().flatten());
    match key {
        Some(key) => {
            let name = KeyName(key.name.clone());
            request.extensions_mut().insert(key);
            let mut response = next.run(request).await;
            response.extensions_mut().insert(name);
            response
        }
        None => Redirect::to("/login").into_response(),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    key: String,
}

async fn login_form() -> Html<String> {
    Html(login_page(None).into_string())
}

async fn login(State(server): State<Arc<Server>>, Form(form): Form<LoginForm>) -> Response {
    let secret = form.key.trim().to_string();
    match server.keys.verify(&secret) {
        Ok(Some(_)) => {
            let mut response = Redirect::to("/").into_response();
            // The secret is the session: HTTP-only (no script reads it), same-site (no other
            // site's page sends it).
            let cookie = format!("{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict");
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        _ => (
            StatusCode::UNAUTHORIZED,
            Html(login_page(Some("That key is not valid (unknown, revoked or expired).")).into_string()),
        )
            .into_response(),
    }
}

async fn logout() -> Response {
    let mut response = Redirect::to("/login").into_response();
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("ASCII"));
    response
}

fn login_page(error: Option<&str>) -> Markup {
    document(
        "Sign in",
        None,
        html! {
            h1 { "Sign in" }
            @if let Some(error) = error {
                p.error role="alert" { (error) }
            }
            form method="post" action="/login" {
                label for="key" { "API key" }
                input #key name="key" type="password" autocomplete="current-password" required autofocus;
                p.hint { "A secret from " code { "etl serve keys create" } "." }
                button type="submit" { "Sign in" }
            }
        },
    )
}

async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css")], include_str!("console.css")).into_response()
}

/// A whole page: skip link, navigation (when signed in), the content as `main`.
fn document(title: &str, key: Option<&Key>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · etl" }
                link rel="stylesheet" href="/console.css";
                // No icon: without this the browser asks for /favicon.ico, a 404.
                link rel="icon" href="data:,";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                @if let Some(key) = key {
                    header {
                        nav aria-label="Main" {
                            ul {
                                li { a href="/" { "Runs" } }
                                li { a href="/bill" { "Bill" } }
                                li { a href="/tables" { "Tables" } }
                                li { a href="/pipelines" { "Pipelines" } }
                            }
                        }
                        form.logout method="post" action="/logout" {
                            span { "Key " strong { (key.name) } }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main tabindex="-1" { (content) }
            }
        }
    }
}

/// A page for a signed-in key.
fn page(title: &str, key: &Key, content: Markup) -> Response {
    Html(document(title, Some(key), content).into_string()).into_response()
}

/// A page that says what went wrong, with the status it deserves.
fn problem(status: StatusCode, key: &Key, message: &str) -> Response {
    let body = document("Problem", Some(key), html! { h1 { "Problem" } p.error role="alert" { (message) } });
    (status, Html(body.into_string())).into_response()
}

type KeyExt = Extension<Key>;
