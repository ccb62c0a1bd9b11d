#ifndef PTD_LIBS_CORE_REQUEST_H_
#define PTD_LIBS_CORE_REQUEST_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "libs/core/status.h"

namespace google::protobuf {
class Message;
}

// The checks every service's handlers make on a request, with one behaviour for all: paging, ids, idempotency
// keys. Each Check*/parse adds a violation naming the request's field to `violations` (libs/core/status.h) and
// lets the caller go on collecting the others; handlers answer with ptd::Answer (status.h), which logs the
// service's own failures and none of the caller's mistakes.
//
// A service that needs another rule says why in a line where it makes its own.
namespace ptd {

inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 500;
inline constexpr size_t kMaxPageTokenBytes = 256;
inline constexpr size_t kMaxIdempotencyKeyBytes = 128;

// True when `text` is valid UTF-8 without NUL or other control characters (tab and newline allowed).
bool IsCleanText(std::string_view text);

// The page size for a list request's `page_size`: 0 means kDefaultPageSize; negative or above kMaxPageSize is a
// violation on "page_size" (and kDefaultPageSize is returned, so that the handler can go on checking).
int PageSize(int32_t requested, FieldViolations& violations);

// A page token: the sort key of the page's last item, base64url. Opaque to callers, checked on the way back.
std::string PageToken(std::string_view last_key);

// The id a page token stands for, "" for no token. Anything this service did not hand out (too long, not
// base64url, not an id) is a violation on "page_token".
std::string AfterId(std::string_view token, FieldViolations& violations);

// The same for pages whose sort key is not an id (a code, a name, a time and an id): the key must be non-empty
// clean text.
std::string AfterKey(std::string_view token, FieldViolations& violations);

// A required id field: not empty, and an id as the service hands them out (libs/core/ids.h).
void CheckId(std::string_view field, std::string_view value, FieldViolations& violations);

// A create request's `idempotency_key`: required, clean text of at most kMaxIdempotencyKeyBytes.
void CheckIdempotencyKey(std::string_view key, FieldViolations& violations);

// Identifies a create request's content (hex SHA-256 of its deterministic serialization), stored with its
// idempotency key so that the key reused with another request is caught.
std::string RequestHash(const google::protobuf::Message& request);

// ALREADY_EXISTS for an idempotency key that came before with another request.
absl::Status ReusedKeyError();

}  // namespace ptd

#endif  // PTD_LIBS_CORE_REQUEST_H_
