# The backend (`python -m tuitalk serve`): Debian's python3 and a venv with the tuitalk wheel
# and its dependencies. compose/images.py stages root/tmp/wheels (built on the host from the
# repository and the versions pinned in the developer venv); pip runs from its own wheel, so
# neither pip nor python3-venv stays in the image.
FROM tuitalk/base:bookworm
RUN apt-get update \
 && apt-get install -y python3 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin tuitalk
COPY root/ /
RUN python3 -m venv --without-pip /opt/tuitalk \
 && pip=$(ls /tmp/wheels/pip-*.whl) \
 && /opt/tuitalk/bin/python "$pip/pip" install --quiet --no-index --no-cache-dir \
        --disable-pip-version-check --find-links /tmp/wheels tuitalk \
 && rm -rf /tmp/wheels
ENV PATH=/opt/tuitalk/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1
USER tuitalk
WORKDIR /nonexistent
CMD ["python", "-m", "tuitalk", "serve"]
