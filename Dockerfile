# Builds the `atlas` binary and a slim runtime image holding it, its configuration and the
# bundled reference geography.
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p atlas-cli

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /app atlas \
    && install -d -o atlas /var/lib/atlas/audit-checkpoints
WORKDIR /app
COPY --from=build /src/target/release/atlas /usr/local/bin/atlas
COPY config ./config
COPY data ./data
USER atlas
ENV ATLAS_ENV=production
EXPOSE 8080
ENTRYPOINT ["atlas"]
CMD ["serve"]
