# The tierstream image used by docker-compose.yml (workers and the demo producer).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY scoring ./scoring
COPY streams ./streams
COPY devkit ./devkit
# no extras: the development stack's Tansu and Valkey wheels stay out of the image
RUN pip install --no-cache-dir .
ENV TIERSTREAM_DATA_DIR=/data
VOLUME /data
ENTRYPOINT ["tierstream"]
CMD ["worker"]
