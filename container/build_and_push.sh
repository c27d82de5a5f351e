#!/usr/bin/env bash
# Build the Mask R-CNN image, push it to Amazon ECR, and print its URI: the only line on stdout.
#
#   container/build_and_push.sh [-r REPOSITORY] [-t EXTRA_TAG] [--region REGION]
#                               [--build-arg NAME=VALUE ...] [--no-push]
#
# The image is tagged with the git commit (never only `latest`), plus EXTRA_TAG when given. The
# ECR repository is created when missing. Login uses `aws ecr get-login-password` (the removed
# `aws ecr get-login` broke the original samples). With --no-push nothing touches AWS and the
# local tag REPOSITORY:COMMIT is printed. Progress goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
    cat >&2 <<'USAGE'
usage: build_and_push.sh [-r REPOSITORY] [-t EXTRA_TAG] [--region REGION]
                         [--build-arg NAME=VALUE ...] [--no-push]
  -r, --repository  ECR repository name (default: mask-r-cnn)
  -t, --tag         an extra tag besides the git commit (e.g. latest, v1)
  --region          AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, or the CLI's config)
  --build-arg       passed to docker build (BASE_IMAGE, INSTALL_TORCH, TORCH_INDEX_URL, ...)
  --no-push         build and tag locally only; print REPOSITORY:COMMIT
USAGE
}

fail() {
    echo "error: $*" >&2
    exit 2
}

repository="mask-r-cnn"
extra_tag=""
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
push=1
build_args=()

while [[ $# -gt 0 ]]; do
    case "$1" in
        -r | --repository | -t | --tag | --region | --build-arg)
            [[ $# -ge 2 && -n "$2" ]] || { usage; fail "$1 needs a value"; }
            case "$1" in
                -r | --repository) repository="$2" ;;
                -t | --tag) extra_tag="$2" ;;
                --region) region="$2" ;;
                --build-arg)
                    [[ "$2" == *=* ]] || { usage; fail "--build-arg '$2' is not NAME=VALUE"; }
                    build_args+=(--build-arg "$2")
                    ;;
            esac
            shift 2
            ;;
        --no-push) push=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage; fail "unknown argument '$1'" ;;
    esac
done

name_re='^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$'
[[ "$repository" =~ $name_re ]] || fail "repository '$repository' is not a valid ECR name (lower case letters, digits, . _ - /)"
tag_re='^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$'
[[ -z "$extra_tag" || "$extra_tag" =~ $tag_re ]] || fail "tag '$extra_tag' is not a valid image tag"

commit="${SOURCE_COMMIT:-}"
if [[ -z "$commit" ]]; then
    commit="$(git -C "$here" rev-parse --short=12 HEAD 2>/dev/null)" \
        || fail "no git commit found in $here; run inside the repository or set SOURCE_COMMIT"
fi
if [[ -n "$(git -C "$here" status --porcelain -- . 2>/dev/null || true)" ]]; then
    echo "warning: container/ has uncommitted changes; the tag $commit does not describe them" >&2
fi

if [[ "$push" == 1 ]]; then
    if [[ -z "$region" ]]; then
        region="$(aws configure get region 2>/dev/null || true)"
    fi
    [[ -n "$region" ]] || fail "no AWS region; pass --region or set AWS_REGION"
    account="$(aws sts get-caller-identity --query Account --output text)"
    suffix="amazonaws.com"
    [[ "$region" == cn-* ]] && suffix="amazonaws.com.cn"
    registry="${account}.dkr.ecr.${region}.${suffix}"
    image="${registry}/${repository}"
    if ! aws ecr describe-repositories --region "$region" --repository-names "$repository" >/dev/null 2>&1; then
        echo "creating ECR repository $repository in $region" >&2
        aws ecr create-repository --region "$region" --repository-name "$repository" \
            --image-scanning-configuration scanOnPush=true >/dev/null
    fi
    aws ecr get-login-password --region "$region" \
        | docker login --username AWS --password-stdin "$registry" >&2
else
    image="$repository"
fi

docker build ${build_args[@]+"${build_args[@]}"} --build-arg "SOURCE_COMMIT=${commit}" \
    -t "${image}:${commit}" -f "$here/Dockerfile" "$here" >&2
if [[ -n "$extra_tag" ]]; then
    docker tag "${image}:${commit}" "${image}:${extra_tag}" >&2
fi
if [[ "$push" == 1 ]]; then
    docker push "${image}:${commit}" >&2
    if [[ -n "$extra_tag" ]]; then
        docker push "${image}:${extra_tag}" >&2
    fi
fi
echo "${image}:${commit}"
