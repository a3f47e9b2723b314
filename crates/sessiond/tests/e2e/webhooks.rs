//! Webhooks survive the death of the instance delivering them: the real binary is killed
//! with SIGKILL while an attempt is in flight, and the event still arrives, with the same
//! `webhook-id`, once a new process on the same data folder finds the lease run out.

use std::time::{Duration, Instant};

use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{Server, say, serve, tempdir};

const SECRET: &str = "whsec_c2Vzc2lvbmQtd2ViaG9vay10ZXN0LXNlY3JldC0zMmI=";

async fn requests(receiver: &MockServer) -> Vec<wiremock::Request> {
    receiver.received_requests().await.unwrap_or_default()
}

async fn wait_for_requests(
    receiver: &MockServer,
    n: usize,
    within: Duration,
) -> Vec<wiremock::Request> {
    let started = Instant::now();
    loop {
        let got = requests(receiver).await;
        if got.len() >= n {
            return got;
        }
        assert!(
            started.elapsed() < within,
            "{} of {n} requests in {within:?}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn id_of(request: &wiremock::Request) -> String {
    request.headers["webhook-id"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_kill_9_mid_delivery_loses_no_event() {
    let receiver = MockServer::start().await;
    // The first attempt hangs: the process dies with it in flight.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .up_to_n_times(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    let dir = tempdir();
    let data = dir.path().join("data");
    let config = dir.path().join("sessiond.toml");
    std::fs::write(
        &config,
        format!(
            "[webhooks]\ntimeout = \"2s\"\npoll_interval = \"100ms\"\n\n\
             [webhooks.endpoints.hook]\nurl = \"{}/hook\"\nsecret = \"{SECRET}\"\nevents = [\"user.created\"]\n",
            receiver.uri()
        ),
    )
    .unwrap();
    let with_config = || {
        let mut cmd = serve(dir.path(), Some(&data));
        cmd.arg("--config").arg(&config);
        cmd
    };

    let first = Server::start(with_config());
    first.api().register("killed@example.com").await;
    let hung = wait_for_requests(&receiver, 1, Duration::from_secs(10)).await;
    let id = id_of(&hung[0]);
    say("the first attempt is in flight: SIGKILL");
    drop(first); // Drop sends SIGKILL and reaps the process.

    let second = Server::start(with_config());
    // The lease (twice the timeout and 5 s) runs out, then the new process delivers.
    let got = wait_for_requests(&receiver, 2, Duration::from_secs(30)).await;
    assert_eq!(
        id_of(&got[1]),
        id,
        "the same event, with the same webhook-id"
    );
    assert_eq!(got.len(), 2, "{} requests", got.len());
    second.stop();
}
