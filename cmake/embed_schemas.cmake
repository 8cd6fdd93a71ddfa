# Generates a C file holding every schemas/*.avsc, and the earlier versions
# in schemas/previous/*.avsc (<Name>_<version>.avsc), as string constants:
#   const char *xs_schemas_text_<Name>;  const char *xs_schemas_text_<Name>_<version>;
# Invoked as: cmake -DOUT=file.c -DSCHEMA_DIR=dir -P embed_schemas.cmake
file(GLOB files ${SCHEMA_DIR}/*.avsc)
file(GLOB previous ${SCHEMA_DIR}/previous/*.avsc)
list(SORT files)
list(SORT previous)
list(APPEND files ${previous})
set(body "/* Generated from the schemas directory by cmake/embed_schemas.cmake. Do not edit. */\n#include \"schemas.h\"\n")
foreach(f ${files})
  get_filename_component(name ${f} NAME_WE)
  file(READ ${f} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  string(APPEND body "static const char xs_schemas_bytes_${name}[] = {${hex}0x00};\n")
  string(APPEND body "const char *const xs_schemas_text_${name} = xs_schemas_bytes_${name};\n")
endforeach()
file(WRITE ${OUT}.tmp "${body}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
