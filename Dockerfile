# The tierstream worker image (docker-compose.yml: the workers and the demo producer).
# Dependencies from requirements.lock, pinned; the process runs as an unprivileged user.
FROM python:3.11.11-slim
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY pyproject.toml README.md LICENSE ./
COPY schemas ./schemas
COPY scoring ./scoring
COPY streams ./streams
COPY devkit ./devkit
# no extras and no dependency resolution: the development stack's wheels stay out of the image
RUN pip install --no-cache-dir --no-deps . \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin tierstream \
    && mkdir -p /data && chown tierstream /data
ENV TIERSTREAM_DATA_DIR=/data
VOLUME /data
USER 10001
EXPOSE 6066
ENTRYPOINT ["tierstream"]
CMD ["worker"]
