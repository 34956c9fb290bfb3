//! The access guard shared by the record services: session, scope, x-insurantid, record state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{Env, MARIA, UA};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_session_can_be_had_and_ended() {
    let mut env = Env::start().await;
    let mut ch = env.full_session(MARIA).await;
    let r = ch
        .send(
            &epa_protocol::http::Request::get("/epa/authz/v1/logoutFdV").header("x-useragent", UA),
        )
        .await;
    assert_eq!(r.status, 200);
    env.s.shutdown().await;
}
