//! Hello world as a wasi-http component for `wasmtime serve`, doing what
//! `examples/hello_world` does behind Aether's `/execute`: read the request
//! body as JSON and answer its `msg` field (`Hello from Aether!` if absent).

use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wasi::http::proxy::export!(Hello);

#[derive(serde::Deserialize, Default)]
struct Input {
    msg: Option<String>,
}

struct Hello;

/// Reads the whole request body (empty on any error).
fn read_body(request: &IncomingRequest) -> Vec<u8> {
    let mut bytes = Vec::new();
    let Ok(body) = request.consume() else {
        return bytes;
    };
    let Ok(stream) = body.stream() else {
        return bytes;
    };
    while let Ok(chunk) = stream.blocking_read(64 * 1024) {
        bytes.extend_from_slice(&chunk);
    }
    bytes
}

impl wasi::exports::http::incoming_handler::Guest for Hello {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let input: Input = serde_json::from_slice(&read_body(&request)).unwrap_or_default();
        let msg = input.msg.unwrap_or_else(|| "Hello from Aether!".into());
        let headers = Fields::new();
        let _ = headers.set("content-type", &[b"text/plain".to_vec()]);
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("body is taken once");
        ResponseOutparam::set(response_out, Ok(response));
        let out = body.write().expect("stream is taken once");
        out.blocking_write_and_flush(msg.as_bytes())
            .expect("write the body");
        drop(out);
        OutgoingBody::finish(body, None).expect("finish the body");
    }
}
