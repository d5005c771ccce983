# Any SGLang image with a release >= 0.5.11; pin the tag you actually run.
ARG SGLANG_IMAGE=lmsysorg/sglang:latest
FROM ${SGLANG_IMAGE}
# eagle3-patch is not on PyPI: install it from this checkout.
COPY . /opt/eagle3-patch
RUN pip install /opt/eagle3-patch && eagle3-patch apply && eagle3-patch check
RUN hf download Ex0bit/Qwen3.6-27B-PRISM-EAGLE3 --include 'compressed/*' --local-dir /drafter
ENTRYPOINT ["eagle3-patch", "serve", "--no-apply", "--drafter", "/drafter/compressed", "--"]
CMD ["--host", "0.0.0.0", "--port", "30000"]
