# The image of the README's Kubernetes example: Debian slim with the elicence package.
#   scripts/build-deb && docker build -t elicence .
# (scripts/build-deb leaves the package in package/dist/.)
FROM debian:bookworm-slim
COPY package/dist/elicence_*_amd64.deb /tmp/
RUN apt-get update \
 && apt-get install -y --no-install-recommends /tmp/elicence_*_amd64.deb ca-certificates \
 && rm -rf /var/lib/apt/lists/* /tmp/elicence_*_amd64.deb
WORKDIR /work
ENTRYPOINT ["elicence"]
CMD ["--help"]
