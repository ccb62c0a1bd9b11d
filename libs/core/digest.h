#ifndef PTD_LIBS_CORE_DIGEST_H_
#define PTD_LIBS_CORE_DIGEST_H_

#include <string>
#include <string_view>

namespace google::protobuf {
class Message;
}

namespace ptd {

// Lower-case hex SHA-256 of `bytes`.
std::string Sha256Hex(std::string_view bytes);

// Hex SHA-256 of a message's deterministic serialization: identifies a create request's content, so that an
// idempotency key reused with another request is caught.
std::string Sha256OfMessage(const google::protobuf::Message& message);

}  // namespace ptd

#endif  // PTD_LIBS_CORE_DIGEST_H_
