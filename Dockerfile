# syntax=docker/dockerfile:1
# A static ebbflow binary on a distroless base, running as non-root (uid 65532).
#
#   docker build -t ebbflow:latest .
#
# Alpine's Rust targets musl, so the binary is statically linked; aws-lc-rs (the TLS crypto
# provider used by kube's rustls) needs a C toolchain, cmake and perl to build.

FROM rust:1.95-alpine AS build
RUN apk add --no-cache build-base cmake perl
WORKDIR /src
# Dependencies first, so code edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY crates/ebbflow-core/Cargo.toml ./crates/ebbflow-core/
COPY benches ./benches
RUN mkdir -p src crates/ebbflow-core/src && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs crates/ebbflow-core/src/lib.rs \
    && cargo build --release --locked --bin ebbflow || true
# The simulator embeds its default trace and policy from simulations/.
COPY simulations ./simulations
COPY crates ./crates
COPY src ./src
RUN touch src/main.rs src/lib.rs crates/ebbflow-core/src/lib.rs \
    && cargo build --release --locked --bin ebbflow \
    && strip target/release/ebbflow

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/target/release/ebbflow /usr/local/bin/ebbflow
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ebbflow"]
CMD ["run"]
