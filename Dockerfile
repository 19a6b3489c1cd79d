# The product images, for users with Docker, Podman or buildah. `make images` builds the
# same images without a container engine (scripts/images.sh); e2e/tests/images.rs
# keeps the two equal (entrypoint, user, working directory, environment, ports, labels).
#
#   docker build --target operator    -t ghcr.io/stacklok/toolhive-rs/operator:0.1.0 .
#   docker build --target proxyrunner -t ghcr.io/stacklok/toolhive-rs/proxyrunner:0.1.0 .
#   docker build --target mcp-fixture -t ghcr.io/stacklok/toolhive-rs/mcp-fixture:0.1.0 .
#
# Pass --build-arg VERSION=… --build-arg REVISION=$(git rev-parse HEAD) for the labels.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --locked --release -p thv-operator -p thv-proxyrunner -p mcp-fixture --bins
# The same layout make images packs: binary, C runtime, CA certificates, user 65532.
RUN for b in thv-operator thv-proxyrunner mcp-fixture; do \
      scripts/image-rootfs.sh target/release/$b /rootfs/$b; \
    done

FROM scratch AS operator
ARG VERSION=0.1.0
ARG REVISION=unknown
COPY --from=build /rootfs/thv-operator/ /
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /home/nonroot
EXPOSE 8080/tcp 9443/tcp
LABEL org.opencontainers.image.title="thv-operator" \
      org.opencontainers.image.description="ToolHive operator: MCPServer and MCPRegistry controllers, admission webhook" \
      org.opencontainers.image.source="https://github.com/toolhive-rs/toolhive-rs" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["/usr/local/bin/thv-operator"]

FROM scratch AS proxyrunner
ARG VERSION=0.1.0
ARG REVISION=unknown
COPY --from=build /rootfs/thv-proxyrunner/ /
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /home/nonroot
EXPOSE 8080/tcp
LABEL org.opencontainers.image.title="thv-proxyrunner" \
      org.opencontainers.image.description="ToolHive proxy runner: runs an MCP server and proxies MCP traffic through the middleware chain" \
      org.opencontainers.image.source="https://github.com/toolhive-rs/toolhive-rs" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["/usr/local/bin/thv-proxyrunner"]

FROM scratch AS mcp-fixture
ARG VERSION=0.1.0
ARG REVISION=unknown
COPY --from=build /rootfs/mcp-fixture/ /
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /home/nonroot
EXPOSE 8080/tcp
LABEL org.opencontainers.image.title="mcp-fixture" \
      org.opencontainers.image.description="Test-only MCP servers (conformance fixture, echo) over stdio and streamable HTTP" \
      org.opencontainers.image.source="https://github.com/toolhive-rs/toolhive-rs" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["/usr/local/bin/mcp-fixture"]
