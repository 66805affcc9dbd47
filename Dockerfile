# rtchat-server in a container, against the PostgreSQL of docker-compose.yml (or any DATABASE_URL).
# Not built in CI: the project's machines have no container engine.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin rtchat-server --bin rtchat

FROM debian:bookworm-slim
RUN useradd --system --home-dir /var/lib/rtchat --create-home rtchat
COPY --from=build /src/target/release/rtchat-server /src/target/release/rtchat /usr/local/bin/
USER rtchat
ENV RTCHAT_BIND=0.0.0.0:8000 RTCHAT_DATA_DIR=/var/lib/rtchat
EXPOSE 8000
STOPSIGNAL SIGTERM
CMD ["rtchat-server"]
